// The entry bin/run.js loads: oclif's `execute`, from the same bundle as the commands (see
// scripts/bundle.mjs), so the commands and the runner share one copy of @oclif/core.
export {execute} from '@oclif/core'
