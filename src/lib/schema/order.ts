// Dependency ordering of DDL statements: a stable topological sort (Kahn's algorithm) in which, among
// the statements whose dependencies are all placed, the one with the smallest sort key comes first.
// The result is deterministic for a given set of statements, whatever order they arrive in. Cycles
// (which the catalogs can hold, e.g. two views through functions) are broken at the smallest key
// left and reported, never looped on. Pure: no I/O.

export interface Sortable {
  id: string
  dependsOn: string[]
  /** Lexicographic sort key among ready statements. */
  sortKey: string
}

export interface SortResult<T> {
  ordered: T[]
  /** Ids placed while some of their dependencies were not yet (a cycle was broken there). */
  cycleBreaks: string[]
}

class MinHeap<T> {
  private a: T[] = []
  constructor(private readonly less: (x: T, y: T) => boolean) {}
  get size(): number {
    return this.a.length
  }
  push(v: T): void {
    const a = this.a
    a.push(v)
    let i = a.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!this.less(a[i]!, a[p]!)) break
      ;[a[i], a[p]] = [a[p]!, a[i]!]
      i = p
    }
  }
  pop(): T | undefined {
    const a = this.a
    if (a.length === 0) return undefined
    const top = a[0]
    const last = a.pop()!
    if (a.length > 0) {
      a[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < a.length && this.less(a[l]!, a[m]!)) m = l
        if (r < a.length && this.less(a[r]!, a[m]!)) m = r
        if (m === i) break
        ;[a[i], a[m]] = [a[m]!, a[i]!]
        i = m
      }
    }
    return top
  }
}

const cmp = (x: Sortable, y: Sortable): boolean => (x.sortKey === y.sortKey ? x.id < y.id : x.sortKey < y.sortKey)

/** Dependencies on ids that are not in the list are ignored (they exist already or elsewhere). */
export function topoSort<T extends Sortable>(items: T[]): SortResult<T> {
  const byId = new Map<string, T>()
  for (const it of items) {
    if (byId.has(it.id)) throw new Error(`duplicate statement id ${it.id}`)
    byId.set(it.id, it)
  }
  const indegree = new Map<string, number>()
  const dependents = new Map<string, string[]>()
  for (const it of items) {
    const deps = new Set(it.dependsOn.filter((d) => d !== it.id && byId.has(d)))
    indegree.set(it.id, deps.size)
    for (const d of deps) {
      if (!dependents.has(d)) dependents.set(d, [])
      dependents.get(d)!.push(it.id)
    }
  }
  const ready = new MinHeap<T>(cmp)
  for (const it of items) if (indegree.get(it.id) === 0) ready.push(it)
  const ordered: T[] = []
  const placed = new Set<string>()
  const cycleBreaks: string[] = []
  const place = (it: T) => {
    ordered.push(it)
    placed.add(it.id)
    for (const d of dependents.get(it.id) ?? []) {
      const n = indegree.get(d)! - 1
      indegree.set(d, n)
      if (n === 0) ready.push(byId.get(d)!)
    }
  }
  while (ordered.length < items.length) {
    const next = ready.pop()
    if (next) {
      if (!placed.has(next.id)) place(next)
      continue
    }
    // Stuck: every remaining statement waits for another. Walk unplaced dependencies (smallest key
    // first) from the smallest remaining statement until one repeats: that loop is a cycle; place
    // its smallest member and go on.
    let start: T | undefined
    for (const it of items) if (!placed.has(it.id) && (!start || cmp(it, start))) start = it
    const seen = new Map<string, number>()
    const path: T[] = []
    let cur = start!
    while (!seen.has(cur.id)) {
      seen.set(cur.id, path.length)
      path.push(cur)
      let next: T | undefined
      for (const d of cur.dependsOn) {
        const dep = byId.get(d)
        if (dep && d !== cur.id && !placed.has(d) && (!next || cmp(dep, next))) next = dep
      }
      cur = next!
    }
    const cycle = path.slice(seen.get(cur.id)!)
    const min = cycle.reduce((m, it) => (cmp(it, m) ? it : m))
    cycleBreaks.push(min.id)
    indegree.set(min.id, 0)
    place(min)
  }
  return {ordered, cycleBreaks}
}
