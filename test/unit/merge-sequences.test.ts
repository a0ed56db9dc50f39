import {describe, expect, it} from 'vitest'
import {extremeFor, furthest, nextValue, type OwnedSequence, planSequence} from '../../src/lib/merge/sequences.js'

const up: OwnedSequence = {schema: 'public', name: 's', column: 'id', increment: '1', min: '1', max: '9223372036854775807'}
const by10: OwnedSequence = {...up, increment: '10'}
const down: OwnedSequence = {...up, increment: '-1', min: '-9223372036854775808', max: '-1'}
const small: OwnedSequence = {...up, max: '100'}

describe('owned sequences after a merge', () => {
  it('next value: last_value when not called, else last_value + increment (exact int8)', () => {
    expect(nextValue(up, {lastValue: '1', isCalled: false})).toBe(1n)
    expect(nextValue(up, {lastValue: '9007199254740993', isCalled: true})).toBe(9007199254740994n)
    expect(nextValue(down, {lastValue: '-5', isCalled: true})).toBe(-6n)
  })

  it('ascending: advances to max(column) when nextval would not exceed it', () => {
    expect(planSequence(up, {lastValue: '1', isCalled: false}, '4')).toEqual({setTo: '4', problem: null})
    expect(planSequence(up, {lastValue: '3', isCalled: true}, '4')).toEqual({setTo: '4', problem: null})
    // nextval would give 4 = max: a collision, so advance.
    expect(planSequence(up, {lastValue: '4', isCalled: false}, '4')).toEqual({setTo: '4', problem: null})
    expect(planSequence(by10, {lastValue: '1', isCalled: true}, '11')).toEqual({setTo: '11', problem: null})
  })

  it('never backwards: a sequence already past the column is left alone', () => {
    expect(planSequence(up, {lastValue: '4', isCalled: true}, '4')).toEqual({setTo: null, problem: null})
    expect(planSequence(up, {lastValue: '100', isCalled: true}, '4')).toEqual({setTo: null, problem: null})
    expect(planSequence(up, {lastValue: '5', isCalled: false}, '4')).toEqual({setTo: null, problem: null})
    expect(planSequence(up, {lastValue: '1', isCalled: false}, null)).toEqual({setTo: null, problem: null})
  })

  it('descending: the column minimum matters, advanced downwards only', () => {
    expect(planSequence(down, {lastValue: '-1', isCalled: false}, '-7')).toEqual({setTo: '-7', problem: null})
    expect(planSequence(down, {lastValue: '-7', isCalled: true}, '-7')).toEqual({setTo: null, problem: null})
    expect(planSequence(down, {lastValue: '-20', isCalled: true}, '-7')).toEqual({setTo: null, problem: null})
    expect(extremeFor(down, '-1', '-7')).toBe('-7')
    expect(extremeFor(up, '9', '1')).toBe('9')
  })

  it('the furthest of two extremes in the direction; bounds reported, not exceeded', () => {
    expect(furthest(up, '9', '12')).toBe('12')
    expect(furthest(up, null, '3')).toBe('3')
    expect(furthest(up, '3', null)).toBe('3')
    expect(furthest(down, '-9', '-12')).toBe('-12')
    expect(furthest(up, '9223372036854775806', '9223372036854775807')).toBe('9223372036854775807')
    expect(planSequence(small, {lastValue: '50', isCalled: true}, '150')).toEqual({setTo: null, problem: "max(id) = 150 is above the sequence's MAXVALUE 100"})
  })
})
