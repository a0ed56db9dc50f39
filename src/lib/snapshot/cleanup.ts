// Removing what a snapshot left on its source: the kept slot (so the source stops retaining WAL)
// and the publication made for it. Used when generate fails and by `snapshot delete --drop-slot`.

import pg from 'pg'

/** Drops the slot (waiting briefly for its connection to go away) and the publication; both may be absent. */
export async function dropSlotAndPublication(client: pg.Client, slot: string | null, publication: string | null): Promise<{slotDropped: boolean; publicationDropped: boolean}> {
  let slotDropped = false
  if (slot) {
    for (let i = 0; i < 50; i++) {
      const r = await client.query<{active: boolean}>(`SELECT active FROM pg_replication_slots WHERE slot_name = $1`, [slot])
      if (r.rows.length === 0) break
      if (!r.rows[0]!.active) {
        await client.query(`SELECT pg_drop_replication_slot($1)`, [slot])
        slotDropped = true
        break
      }
      await new Promise((res) => setTimeout(res, 100))
    }
  }
  let publicationDropped = false
  if (publication) {
    const r = await client.query(`SELECT 1 FROM pg_publication WHERE pubname = $1`, [publication])
    if (r.rows.length) {
      await client.query(`DROP PUBLICATION ${pg.escapeIdentifier(publication)}`)
      publicationDropped = true
    }
  }
  return {slotDropped, publicationDropped}
}
