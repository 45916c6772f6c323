/**
 * Lays out a workflow's step graph left to right: each step in the column of its longest
 * dependency chain, steps in a column ordered to keep edges short (barycenter sweeps).
 * Pure: no DOM, so it is unit-tested and runs the same for 5 or 500 steps.
 */

export interface GraphStep {
  id: string;
  after?: readonly string[];
}

export interface NodeBox {
  id: string;
  layer: number;
  /** Position in its layer, from 0. */
  index: number;
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface Edge {
  from: string;
  to: string;
  /** SVG path data from the right of `from` to the left of `to`. */
  d: string;
}

export interface GraphLayout {
  nodes: NodeBox[];
  edges: Edge[];
  width: number;
  height: number;
}

export const GRAPH_SIZES = { nodeWidth: 164, nodeHeight: 56, gapX: 56, gapY: 14, margin: 12 } as const;

/** Layer of every step: 0 for steps that wait for nothing, else one more than their deepest dependency. */
export function layersOf(steps: readonly GraphStep[]): Map<string, number> {
  const ids = new Set(steps.map((step) => step.id));
  const deps = new Map(steps.map((step) => [step.id, (step.after ?? []).filter((id) => ids.has(id) && id !== step.id)]));
  const dependents = new Map<string, string[]>(steps.map((step) => [step.id, []]));
  const waiting = new Map<string, number>();
  for (const [id, list] of deps) {
    waiting.set(id, list.length);
    for (const dep of list) dependents.get(dep)?.push(id);
  }
  const layer = new Map<string, number>();
  const ready = steps.filter((step) => waiting.get(step.id) === 0).map((step) => step.id);
  // Kahn's order: a step is placed once all its dependencies are.
  for (let i = 0; i < ready.length; i++) {
    const id = ready[i] as string;
    const own = Math.max(-1, ...(deps.get(id) ?? []).map((dep) => layer.get(dep) ?? 0)) + 1;
    layer.set(id, own);
    for (const next of dependents.get(id) ?? []) {
      const left = (waiting.get(next) ?? 0) - 1;
      waiting.set(next, left);
      if (left === 0) ready.push(next);
    }
  }
  // A cycle cannot be stored (validation refuses it), but a drawing must never loop: put leftovers last.
  const deepest = Math.max(-1, ...layer.values());
  for (const step of steps) if (!layer.has(step.id)) layer.set(step.id, deepest + 1);
  return layer;
}

export function layoutGraph(steps: readonly GraphStep[]): GraphLayout {
  const { nodeWidth, nodeHeight, gapX, gapY, margin } = GRAPH_SIZES;
  const layerOf = layersOf(steps);
  const layerCount = Math.max(0, ...layerOf.values()) + (steps.length > 0 ? 1 : 0);
  const columns: string[][] = Array.from({ length: layerCount }, () => []);
  for (const step of steps) columns[layerOf.get(step.id) ?? 0]?.push(step.id);

  const known = new Set(steps.map((step) => step.id));
  const preds = new Map(steps.map((step) => [step.id, (step.after ?? []).filter((id) => known.has(id))]));
  const succs = new Map<string, string[]>(steps.map((step) => [step.id, []]));
  for (const [id, list] of preds) for (const dep of list) succs.get(dep)?.push(id);

  const position = new Map<string, number>();
  const index = () => columns.forEach((column) => column.forEach((id, i) => position.set(id, i)));
  index();
  const reorder = (column: string[], neighbours: Map<string, string[]>) => {
    const weight = new Map<string, number>();
    for (const id of column) {
      const list = neighbours.get(id) ?? [];
      weight.set(id, list.length === 0 ? (position.get(id) ?? 0) : list.reduce((sum, other) => sum + (position.get(other) ?? 0), 0) / list.length);
    }
    // Array.prototype.sort is stable: ties keep their order, so the layout is deterministic.
    column.sort((a, b) => (weight.get(a) ?? 0) - (weight.get(b) ?? 0));
    column.forEach((id, i) => position.set(id, i));
  };
  for (let sweep = 0; sweep < 4; sweep++) {
    for (let layer = 1; layer < columns.length; layer++) reorder(columns[layer] as string[], preds);
    for (let layer = columns.length - 2; layer >= 0; layer--) reorder(columns[layer] as string[], succs);
  }

  const tallest = Math.max(0, ...columns.map((column) => column.length));
  const nodes: NodeBox[] = [];
  const byId = new Map<string, NodeBox>();
  columns.forEach((column, layer) => {
    // Short columns are centred against the tallest one.
    const offset = ((tallest - column.length) * (nodeHeight + gapY)) / 2;
    column.forEach((id, i) => {
      const node = { id, layer, index: i, x: margin + layer * (nodeWidth + gapX), y: margin + offset + i * (nodeHeight + gapY), width: nodeWidth, height: nodeHeight };
      nodes.push(node);
      byId.set(id, node);
    });
  });
  const edges: Edge[] = [];
  for (const step of steps) {
    const to = byId.get(step.id);
    for (const dep of preds.get(step.id) ?? []) {
      const from = byId.get(dep);
      if (!from || !to) continue;
      const x1 = from.x + from.width;
      const y1 = from.y + from.height / 2;
      const x2 = to.x;
      const y2 = to.y + to.height / 2;
      const bend = Math.max(20, (x2 - x1) / 2);
      edges.push({ from: dep, to: step.id, d: `M${x1} ${y1} C${x1 + bend} ${y1} ${x2 - bend} ${y2} ${x2} ${y2}` });
    }
  }
  return {
    nodes,
    edges,
    width: margin * 2 + Math.max(0, layerCount * (nodeWidth + gapX) - gapX),
    height: margin * 2 + Math.max(0, tallest * (nodeHeight + gapY) - gapY),
  };
}
