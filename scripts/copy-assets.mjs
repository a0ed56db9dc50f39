// Copies the non-TypeScript files the compiled code reads at run time (the SQL migrations).
import {cpSync} from 'node:fs'

cpSync('src/lib/sql', 'dist/lib/sql', {recursive: true, filter: (src) => !src.endsWith('.ts')})
