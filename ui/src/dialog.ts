import { describeError } from './api.js';
import { fill, h } from './dom.js';

/**
 * A confirmation before an action that changes a case. The dialog stays open on failure and
 * shows the API's answer as it is (code and message), so nobody has to guess what went wrong.
 */
export function confirmAction(options: {
  title: string;
  body: Array<Node | string>;
  confirmLabel: string;
  danger?: boolean;
  /** Runs on confirmation; throws to keep the dialog open with the error shown. */
  run: () => Promise<void>;
}): void {
  const error = h('p', { class: 'error', role: 'alert', id: 'dialog-error' });
  const confirm = h('button', { type: 'submit', class: options.danger ? 'danger' : 'primary', id: 'dialog-confirm' }, options.confirmLabel);
  const cancel = h('button', { type: 'button', id: 'dialog-cancel', onclick: () => dialog.close() }, 'Back');
  const form = h(
    'form',
    {
      method: 'dialog',
      onsubmit: (event: Event) => {
        event.preventDefault();
        confirm.disabled = true;
        fill(error, 'Sending…');
        options
          .run()
          .then(() => dialog.close())
          .catch((problem: unknown) => {
            fill(error, describeError(problem));
            confirm.disabled = false;
          });
      },
    },
    h('h3', {}, options.title),
    ...options.body,
    error,
    h('div', { class: 'dialog-buttons' }, cancel, confirm),
  );
  const dialog = h('dialog', { class: 'confirm', id: 'action-dialog' }, form);
  dialog.addEventListener('close', () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
}
