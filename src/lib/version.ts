// The package version, for records that say which steep-repl wrote them (src/ and dist/ are both
// two levels below the package root).
import {readFileSync} from 'node:fs'

export const VERSION: string = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version
