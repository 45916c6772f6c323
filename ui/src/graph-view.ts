import { fill, h, s } from './dom.js';
import { GRAPH_SIZES, layoutGraph, type GraphLayout } from './graph-layout.js';
import { displayState, stepDetail, stepKind, type StepDefinition, type StepView } from './model.js';

/**
 * The workflow graph as SVG: laid out once per definition version, recoloured on each update
 * (each node's class is its state). Clicking a node selects the step.
 */
export class GraphView {
  readonly element: HTMLElement;
  private readonly nodes = new Map<string, { group: SVGGElement; detail: SVGTextElement; title: SVGTitleElement; name: string }>();
  private selected: string | undefined;

  constructor(
    steps: readonly StepDefinition[],
    private readonly onSelect: (stepId: string) => void,
  ) {
    const layout: GraphLayout = layoutGraph(steps);
    const byId = new Map(steps.map((step) => [step.id, step]));
    const svg = s('svg', {
      class: 'graph',
      id: 'graph',
      width: layout.width,
      height: layout.height,
      viewBox: `0 0 ${layout.width} ${layout.height}`,
      role: 'img',
      'aria-label': `workflow graph of ${steps.length} steps`,
    });
    // Every node's text is clipped to its box (besides being shortened with an ellipsis), so a
    // long name can never run into its neighbour; the node's title tooltip has it in full.
    svg.append(
      s(
        'defs',
        {},
        s('clipPath', { id: 'node-text-clip' }, s('rect', { x: 4, y: 0, width: GRAPH_SIZES.nodeWidth - 10, height: GRAPH_SIZES.nodeHeight })),
        s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' }, s('path', { d: 'M0 0 L10 5 L0 10 z', class: 'arrow' })),
      ),
    );
    const edges = s('g', { class: 'edges' });
    for (const edge of layout.edges) edges.append(s('path', { d: edge.d, class: 'edge', 'marker-end': 'url(#arrow)', 'data-from': edge.from, 'data-to': edge.to }));
    svg.append(edges);
    for (const node of layout.nodes) {
      const step = byId.get(node.id);
      const kind = step ? stepKind(step) : '';
      const detail = s('text', { x: 10, y: 48, class: 'node-detail' }, '');
      const name = `${node.id}${kind ? ` (${kind})` : ''}`;
      const title = s('title', {}, name);
      const group = s(
        'g',
        {
          class: 'node state-pending',
          transform: `translate(${node.x} ${node.y})`,
          'data-step': node.id,
          'data-state': 'pending',
          tabindex: 0,
          role: 'button',
          onclick: () => this.onSelect(node.id),
          onkeydown: (event: Event) => {
            if ((event as KeyboardEvent).key === 'Enter') this.onSelect(node.id);
          },
        },
        title,
        s('rect', { width: node.width, height: node.height, rx: 6, class: 'node-box' }),
        s('g', { 'clip-path': 'url(#node-text-clip)' }, s('text', { x: 10, y: 17, class: 'node-id' }, clip(node.id, 20)), s('text', { x: 10, y: 32, class: 'node-kind' }, clip(kind, 26)), detail),
      );
      this.nodes.set(node.id, { group, detail, title, name });
      svg.append(group);
    }
    this.element = h('div', { class: 'graph-scroll' }, svg);
  }

  update(steps: Record<string, StepView>, now: number): void {
    for (const [id, node] of this.nodes) {
      const step = steps[id];
      const state = displayState(step);
      node.group.setAttribute('class', `node state-${state}${this.selected === id ? ' selected' : ''}`);
      node.group.setAttribute('data-state', state);
      const detail = stepDetail(step, now);
      fill(node.detail, clip(detail, 26));
      fill(node.title, `${node.name}: ${detail}`);
    }
  }

  select(stepId: string | undefined): void {
    if (this.selected) this.nodes.get(this.selected)?.group.classList.remove('selected');
    this.selected = stepId;
    if (stepId) this.nodes.get(stepId)?.group.classList.add('selected');
  }
}

function clip(text: string, length: number): string {
  return text.length > length ? `${text.slice(0, length - 1)}…` : text;
}
