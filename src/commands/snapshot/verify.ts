import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../../lib/base-command.js'
import {ManifestError, readManifest, type VerifyResult, verifyFiles} from '../../lib/snapshot/manifest-io.js'
import {formatBytes} from '../../lib/ui/output.js'

export default class SnapshotVerify extends BaseCommand<typeof SnapshotVerify> {
  static override summary = 'Check a snapshot directory: the manifest, its checksum, and every file it names.'
  static override description =
    'Reads manifest.json, checks its shape, its own checksum, its totals and that every path stays inside the directory, then checks that every schema and data file is present with the recorded size and SHA-256. Nothing is decompressed and no server is needed. Exits 0 when everything matches, 1 otherwise.'

  static override examples = ['<%= config.bin %> snapshot verify ./snap', '<%= config.bin %> snapshot verify ./snap --json']

  static override args = {dir: Args.directory({description: 'The snapshot directory.', required: true})}
  static override flags = {parallel: Flags.integer({char: 'j', summary: 'Files hashed at once.', default: 4, min: 1, max: 64})}

  async run(): Promise<Omit<VerifyResult, 'identities'> & {snapshotId: string}> {
    const m = await readManifest(this.args.dir)
    const r = await verifyFiles(this.args.dir, m, this.flags.parallel)
    if (!r.ok) {
      throw new ManifestError(`snapshot ${m.snapshotId} failed verification: ${r.problems.map((p) => `${p.file}: ${p.problem} (${p.detail})`).join('; ')}`, {
        hint: 'Do not apply it; generate the snapshot again.',
      })
    }
    this.log(`snapshot ${m.snapshotId} is intact: ${r.files} files, ${formatBytes(r.bytes)}, manifest checksum ok (LSN ${m.lsn})`)
    // The file identities are apply's business, not the report's.
    const {identities: _identities, ...report} = r
    return {snapshotId: m.snapshotId, ...report}
  }
}
