// The job machinery's public surface, for capabilities and commands.
//
//   import {defineOperation, connRefSchema} from '../../direct/index.js'   // in src/lib/<capability>/job.ts
//   import {jobFlags, runJobCommand} from '../../direct/index.js'          // in the thin command
//
// See docs/jobs.md.

export {defineOperation, registeredOperation, registeredOperations, validateParams} from './registry.js'
export type {AnyOperationKind, JobContext, JobInfo, OperationKind, ProgressReporter} from './registry.js'
export {connRefSchema, findSecret, parseConnRef} from './params.js'
export type {ConnRef} from './params.js'
export {followJob, jobDocument, jobFlags, JobFailedError, runJobCommand, throwForStatus} from './run.js'
export type {JobDocument, JobFlagValues, JobHost, RunJobOptions} from './run.js'
export {loadOperation, knownOperations} from './operations/catalog.js'
export {JobExecution, JobStop} from './executor.js'
export {watchJob, subscribeProgress} from './progress.js'
export {Worker} from './worker.js'
export type {PhaseSpec, Totals, Amounts} from './progress-model.js'
export type {ProgressPayload, JobStatus} from './progress-schema.js'
