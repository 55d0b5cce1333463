/**
 * rxrl/operators under Node: every operator (operators/core.ts, what a browser bundle gets) plus
 * the JSONL metrics file sink and reader (lib/io/metrics-jsonl.ts).
 */
export * from './core.ts';
export { jsonlSink, readJsonl, readJsonlFile, MetricsFileError, type JsonlSink, type JsonlSinkOptions } from '../lib/io/metrics-jsonl.ts';
