import { ApiError, describeError, fetchSession, hasKey, setKey, whenUnauthenticated, type Session } from './api.js';
import { casePage } from './case-page.js';
import { casesPage } from './cases-page.js';
import { fill, h } from './dom.js';
import { fleetPage } from './fleet-page.js';

/**
 * The explorer's shell: signs in (unless the API runs without auth), draws the header and
 * routes by the URL fragment (#/cases, #/cases/<id>, #/fleet). Filters live in the fragment so
 * that a view can be shared; the API key never does.
 */

export interface PageContext {
  session: Session;
  root: HTMLElement;
  params: URLSearchParams;
  navigate(hash: string): void;
  may(permission: string): boolean;
}

/** A page draws itself into `root` and returns what stops its timers. */
export type Page = (context: PageContext, ...args: string[]) => () => void;

let session: Session | undefined;
let stopPage: (() => void) | undefined;

const app = document.getElementById('app') as HTMLElement;

function navigate(hash: string): void {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function signIn(message?: string): void {
  stopPage?.();
  stopPage = undefined;
  const input = h('input', { type: 'password', id: 'api-key', name: 'api-key', autocomplete: 'off', spellcheck: 'false', placeholder: 'wfk_…', required: true, 'aria-label': 'API key' });
  const error = h('p', { class: 'error', role: 'alert', id: 'sign-in-error' }, message ?? '');
  const form = h(
    'form',
    {
      class: 'sign-in',
      onsubmit: (event: Event) => {
        event.preventDefault();
        const candidate = input.value.trim();
        if (!candidate) return;
        fill(error, 'Checking the key…');
        fetchSession(candidate)
          .then((answer) => {
            setKey(candidate);
            session = answer;
            input.value = '';
            if (!location.hash || location.hash === '#') location.hash = '#/cases';
            route();
          })
          .catch((problem: unknown) => {
            fill(error, problem instanceof ApiError && problem.status === 401 ? 'That key is not valid (unknown, revoked or expired).' : describeError(problem));
          });
      },
    },
    h('h1', {}, 'workfleet explorer'),
    h('p', {}, 'Sign in with an API key. It stays in this browser tab only and is sent to the API in a header.'),
    h('label', { for: 'api-key' }, 'API key'),
    input,
    h('button', { type: 'submit' }, 'Sign in'),
    error,
  );
  fill(app, form);
  input.focus();
}

function header(current: Session): HTMLElement {
  const may = (permission: string) => current.permissions.includes(permission);
  const tab = location.hash.startsWith('#/fleet') ? 'fleet' : 'cases';
  return h(
    'header',
    { class: 'top' },
    h('a', { class: 'brand', href: '#/cases' }, 'workfleet explorer'),
    h(
      'nav',
      {},
      h('a', { href: '#/cases', class: tab === 'cases' ? 'active' : undefined }, 'Cases'),
      may('fleet:read') && h('a', { href: '#/fleet', class: tab === 'fleet' ? 'active' : undefined }, 'Fleet'),
      may('cases:operate') && h('a', { href: '/admin/queues', target: '_blank', rel: 'noopener' }, 'Bull Board ↗'),
      h('a', { href: '/docs', target: '_blank', rel: 'noopener' }, 'API docs ↗'),
    ),
    h('span', { class: 'who', id: 'who' }, current.authEnabled ? `${current.principal.name} (${current.principal.roles.join(', ')})` : 'auth off: development mode'),
    current.authEnabled &&
      h(
        'button',
        {
          class: 'link',
          id: 'sign-out',
          onclick: () => {
            setKey(undefined);
            session = undefined;
            signIn('Signed out.');
          },
        },
        'Sign out',
      ),
  );
}

function route(): void {
  if (!session) return;
  stopPage?.();
  stopPage = undefined;
  const hash = location.hash.replace(/^#/, '') || '/cases';
  const [path = '', query = ''] = hash.split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const root = h('main', { id: 'page' });
  fill(app, header(session), root);
  const current = session;
  const context: PageContext = { session: current, root, params: new URLSearchParams(query), navigate, may: (permission) => current.permissions.includes(permission) };
  if (parts[0] === 'cases' && parts[1]) stopPage = casePage(context, parts[1]);
  else if (parts[0] === 'fleet') stopPage = fleetPage(context);
  else stopPage = casesPage(context);
}

async function start(): Promise<void> {
  whenUnauthenticated(() => {
    setKey(undefined);
    session = undefined;
    signIn('The API refused the key (revoked or expired?): sign in again.');
  });
  window.addEventListener('hashchange', route);
  try {
    session = await fetchSession();
    route();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) signIn(hasKey() ? 'The key was refused: sign in again.' : undefined);
    else fill(app, h('p', { class: 'error', role: 'alert' }, `The API is not answering: ${describeError(error)}`));
  }
}

void start();
