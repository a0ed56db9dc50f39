import {describe, expect, it} from 'vitest'
import {topoSort} from '../../src/lib/schema/order.js'

const item = (id: string, sortKey: string, dependsOn: string[] = []) => ({id, sortKey, dependsOn})

describe('dependency ordering', () => {
  it('puts dependencies first and otherwise follows the sort key', () => {
    const items = [item('view', '3', ['table']), item('table', '2', ['seq', 'func']), item('func', '1'), item('seq', '0'), item('schema', '9')]
    const {ordered, cycleBreaks} = topoSort(items)
    expect(ordered.map((i) => i.id)).toEqual(['seq', 'func', 'table', 'view', 'schema'])
    expect(cycleBreaks).toEqual([])
  })

  it('is deterministic whatever the input order', () => {
    const items = Array.from({length: 30}, (_, i) => item(`n${i}`, String(i % 7), i > 2 ? [`n${i % 3}`] : []))
    const a = topoSort(items).ordered.map((i) => i.id)
    const b = topoSort([...items].reverse()).ordered.map((i) => i.id)
    expect(b).toEqual(a)
  })

  it('ignores dependencies outside the list and self-dependencies', () => {
    const {ordered} = topoSort([item('a', '1', ['elsewhere', 'a']), item('b', '0', ['a'])])
    expect(ordered.map((i) => i.id)).toEqual(['a', 'b'])
  })

  it('breaks cycles at the smallest key and reports them', () => {
    const {ordered, cycleBreaks} = topoSort([item('x', '2', ['y']), item('y', '1', ['x']), item('z', '0', ['x'])])
    expect(ordered.map((i) => i.id)).toEqual(['y', 'x', 'z'])
    expect(cycleBreaks).toEqual(['y'])
  })

  it('refuses duplicate ids', () => {
    expect(() => topoSort([item('a', '1'), item('a', '2')])).toThrow(/duplicate/)
  })
})
