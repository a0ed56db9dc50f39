// The schema capability's public API (see docs/schema.md): DDL extraction inside a caller's
// transaction, table/sequence helpers for snapshots and node init, fingerprints, compare.

export {type CatalogModel, type Queryable, readCatalog, type SchemaFilter, type SkippedObject} from './catalog.js'
export {buildDdl, type DdlStatement, postDataWaves, renderDdl, type RenderOptions, type SchemaDdl, type Section, SESSION_SETTINGS, type StatementKind} from './ddl.js'
export {applyDdl, applyStatements, type ExtractOptions, extractSchemaDdl, lockRelations, withEmptySearchPath} from './extract.js'
export {listSequences, listUserTables, primaryKeyColumns, type SequenceState, setSequenceQuery, type UserTable, type UserTableKind} from './objects.js'
export {type ColumnDefinition, fingerprintInput, fingerprintOf, type TableFingerprint, type TableKind} from './fingerprint.js'
export {captureFingerprints, type CaptureResult, computeFingerprints, type FingerprintOptions, readCapturedFingerprints} from './fingerprint-io.js'
export {buildReport, type ColumnDifference, compareFingerprintSets, type CompareReport, diffColumns, type ReadinessIssue, readinessIssues, type TableComparison} from './compare.js'
export {compareNodes, type CompareOptions, diffTable, gatherReplicationFacts} from './compare-io.js'
export {parseQualifiedName, type QualifiedName} from './names.js'
