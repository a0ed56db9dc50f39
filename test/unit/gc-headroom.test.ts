// The GC headroom (src/lib/gc-headroom.ts): reserved once, on first use, at its documented size.
import {describe, expect, it} from 'vitest'
import {gcHeadroomBytes, reserveGcHeadroom} from '../../src/lib/gc-headroom.js'

describe('gc headroom', () => {
  it('is reserved on first use only, 16 MiB of heap', () => {
    expect(gcHeadroomBytes()).toBe(0)
    reserveGcHeadroom()
    expect(gcHeadroomBytes()).toBe(16 * 1024 * 1024)
    reserveGcHeadroom()
    expect(gcHeadroomBytes()).toBe(16 * 1024 * 1024)
  })
})
