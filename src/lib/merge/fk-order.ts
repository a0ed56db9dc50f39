// Tables in foreign-key order (parents before children), pure. Kahn's algorithm with a
// deterministic order: ready tables alphabetically. Only edges between tables in the set count (a
// parent outside the merge is not ours to order); a table that references itself is fine (its rows
// go in one statement per batch). A cycle between tables is reported with its members.

export interface FkEdge {
  /** Referenced table ("schema.table"). */
  parent: string
  /** Referencing table. */
  child: string
}

export type FkOrder = {ok: true; order: string[]} | {ok: false; cycle: string[]}

export function fkOrder(tables: string[], edges: FkEdge[]): FkOrder {
  const set = new Set(tables)
  const children = new Map<string, Set<string>>()
  const indeg = new Map<string, number>(tables.map((t) => [t, 0]))
  for (const e of edges) {
    if (!set.has(e.parent) || !set.has(e.child) || e.parent === e.child) continue
    const ch = children.get(e.parent) ?? new Set<string>()
    if (ch.has(e.child)) continue
    ch.add(e.child)
    children.set(e.parent, ch)
    indeg.set(e.child, (indeg.get(e.child) ?? 0) + 1)
  }
  const ready = [...set].filter((t) => indeg.get(t) === 0).sort()
  const order: string[] = []
  while (ready.length > 0) {
    const t = ready.shift()!
    order.push(t)
    for (const c of [...(children.get(t) ?? [])].sort()) {
      const d = indeg.get(c)! - 1
      indeg.set(c, d)
      if (d === 0) {
        ready.push(c)
        ready.sort()
      }
    }
  }
  if (order.length === set.size) return {ok: true, order}
  return {ok: false, cycle: [...set].filter((t) => !order.includes(t)).sort()}
}
