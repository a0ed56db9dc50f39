#!/usr/bin/env -S node --import tsx
// Development entry: oclif's development mode (stack traces, no manifest). It runs the built
// dist/commands (oclif does not map them to the TypeScript sources here; `npm run build` first), and
// takes oclif from the same bundle as they do (dist/cli.js, see scripts/bundle.mjs).
import {execute} from '../dist/cli.js'

await execute({development: true, dir: import.meta.url})
