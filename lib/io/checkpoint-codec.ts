/**
 * Checkpoints in memory: one safetensors file's bytes with a model's weights, its optimizer's
 * state, the model config and arbitrary plain-data run state — loaded all-or-nothing. No Node
 * built-in: the browser build saves and loads checkpoints with these functions
 * (`checkpointBytes`, `readCheckpointBytes`, `loadCheckpointBytes`); lib/io/checkpoint.ts adds
 * files on disk (written atomically) for Node.
 *
 * File layout (format `rxrl.format` = "1"):
 *
 *   <param name>                       the weights, under the ParamStore's names (F32 for float32)
 *   optimizer/iter                     I32 scalar: the tfjs optimizer's iteration count
 *   optimizer/slots/<param>/<slot>     its per-variable state (Adam: m, v; RMSProp: rms, …)
 *   optimizer/vars/<field>             its other tf.Variables (Adam: accBeta1, accBeta2 = β^t),
 *                                      stored so a resumed step is bit-identical (tfjs' own
 *                                      setWeights recomputes them with pow(), which is not)
 *   state/<k>                          large typed arrays of the run state (> 4 KiB each)
 *   __metadata__:
 *     rxrl.format     "1"
 *     rxrl.config     JSON of the model config
 *     rxrl.state      JSON of the run state (typed arrays, non-finite numbers and bigints tagged,
 *                     see `encodeState`)
 *     rxrl.optimizer  JSON { className, config, slots: [tensor names in optimizer order] }
 *                     (only with an optimizer)
 *     rxrl.optimizer.<name>  the same for a named optimizer (`optimizers`), whose tensors are
 *                     optimizer/<name>/iter, optimizer/<name>/slots/…, optimizer/<name>/vars/…
 *     rxrl.sha256     SHA-256 of the whole file with these 64 hex digits replaced by ASCII '0'
 *
 * Optimizer slots are matched to variables by parameter name when saving (tfjs names its slots
 * after process-global variable ids, which differ between runs) and restored in the same order,
 * renamed to the new variables' ids. tfjs optimizers address slots by position in the order
 * gradients are applied, so resume with the same training code (same variable order).
 *
 * Loading reads the whole file, checks its structure, checksum, format, config (against
 * `expectConfig`), every expected tensor's presence, dtype and shape, optimizer slot shapes and
 * the state's tensor references — and only then assigns variables. Any problem throws a
 * `CheckpointError` naming the file (and the tensor), with every target left as it was.
 *
 * ```ts
 * const bytes = await checkpointBytes({ params: lm.params.map, optimizer: opt, config: cfg,
 *   state: { iteration: 12, rng: rng.state(), lambda: dual.state } });
 * const { state } = await loadCheckpointBytes(bytes, { label: 'ckpt.safetensors', params: lm.params.map,
 *   optimizer: opt, expectConfig: cfg });
 * ```
 */
import * as tf from '@tensorflow/tfjs-core';
import { fromBase64, toBase64 } from '../base64.ts';
import { SafetensorsError, parseSafetensors, safetensorsBytes, verifyChecksum } from './safetensors-codec.ts';
import type { ParsedSafetensors, SafetensorsDType, SafetensorsTensor, TensorData } from './safetensors-codec.ts';

export const CHECKPOINT_FORMAT = '1';
export const META_FORMAT = 'rxrl.format';
export const META_CONFIG = 'rxrl.config';
export const META_STATE = 'rxrl.state';
export const META_OPTIMIZER = 'rxrl.optimizer';
export const META_SHA256 = 'rxrl.sha256';

const OPT = 'optimizer/';
const STATE = 'state/';

/** Typed arrays in the run state larger than this go into tensors instead of base64 JSON. */
export const STATE_INLINE_MAX_BYTES = 4096;

export class CheckpointError extends Error {
  override readonly name = 'CheckpointError';
  constructor(
    readonly path: string,
    readonly detail: string,
  ) {
    super(`checkpoint ${path}: ${detail}`);
  }
}

/** A float32 tensor as plain data (a `ParamStore.toRecord()` entry). */
export interface PlainTensor {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

/**
 * Named tensors to save, as a map or a record: variables (`ParamStore.map`), any tensors, or plain
 * `{ shape, data }` records. The names are the checkpoint's weight names.
 */
export type ParamSource = ReadonlyMap<string, tf.Tensor | PlainTensor> | Readonly<Record<string, tf.Tensor | PlainTensor>>;
/** Named variables to load into (`ParamStore.map`, or a record of tf.Variables). */
export type ParamTarget = ReadonlyMap<string, tf.Variable> | Readonly<Record<string, tf.Variable>>;

export interface SaveCheckpointOptions {
  params: ParamSource;
  optimizer?: tf.Optimizer | undefined;
  /**
   * Further optimizers by name (a learner with several, e.g. TD3's actor and critic Adam), stored
   * as `optimizer/<name>/iter|slots/…|vars/…` with metadata `rxrl.optimizer.<name>`; every
   * variable they train must be among `params`.
   */
  optimizers?: Readonly<Record<string, tf.Optimizer>> | undefined;
  /** The model config (any JSON-able value); loaders compare it with `expectConfig`. */
  config: unknown;
  /** Plain-data run state: numbers, strings, booleans, null, arrays, plain objects, typed arrays, bigints. */
  state?: Readonly<Record<string, unknown>> | undefined;
  /** Extra `__metadata__` strings (keys must not start with `rxrl.`). */
  metadata?: Readonly<Record<string, string>> | undefined;
  /** Write progress (bytes written, total bytes). */
  onProgress?: ((written: number, total: number) => void) | undefined;
}

export interface LoadCheckpointOptions {
  /** Load the weights into these variables. */
  params?: ParamTarget | undefined;
  /** Restore this optimizer's state (needs `params`, to map slots to variables). */
  optimizer?: tf.Optimizer | undefined;
  /** Restore these named optimizers (saved with `optimizers`); each must be in the file. */
  optimizers?: Readonly<Record<string, tf.Optimizer>> | undefined;
  /** Refuse a checkpoint whose config differs from this one (compared as JSON). */
  expectConfig?: unknown;
  /** Weights in the file that `params` lacks are an error (default true); missing ones always are. */
  strict?: boolean | undefined;
}

export interface CheckpointContents {
  readonly config: unknown;
  readonly state: Record<string, unknown>;
  /** Every `__metadata__` entry. */
  readonly metadata: Readonly<Record<string, string>>;
  /** The weights, decoded. */
  readonly params: Readonly<Record<string, SafetensorsTensor>>;
  /** The optimizer state, or null when the checkpoint has none. */
  readonly optimizer: OptimizerState | null;
  /** The named optimizers' states (`optimizers` when saving). */
  readonly optimizers: Readonly<Record<string, OptimizerState>>;
}

export interface OptimizerState {
  readonly className: string;
  readonly config: unknown;
  readonly iterations: number;
  /** Slots in optimizer order: parameter name, slot name, tensor. */
  readonly slots: readonly { readonly param: string; readonly slot: string; readonly tensor: SafetensorsTensor }[];
  /** Other optimizer variables by field name (Adam's accBeta1/accBeta2). */
  readonly vars: Readonly<Record<string, SafetensorsTensor>>;
}

// ---------------------------------------------------------------------------------------------
// Run-state encoding
// ---------------------------------------------------------------------------------------------

type TypedKind = 'float32' | 'float64' | 'int32' | 'int16' | 'int8' | 'uint32' | 'uint16' | 'uint8' | 'uint8clamped' | 'bigint64' | 'biguint64';

type AnyTyped = TensorData | Uint8ClampedArray;

const KINDS: readonly { kind: TypedKind; ctor: { new (b: ArrayBuffer): AnyTyped; readonly BYTES_PER_ELEMENT: number }; dtype: SafetensorsDType }[] = [
  { kind: 'float32', ctor: Float32Array, dtype: 'F32' },
  { kind: 'float64', ctor: Float64Array, dtype: 'F64' },
  { kind: 'int32', ctor: Int32Array, dtype: 'I32' },
  { kind: 'int16', ctor: Int16Array, dtype: 'I16' },
  { kind: 'int8', ctor: Int8Array, dtype: 'I8' },
  { kind: 'uint32', ctor: Uint32Array, dtype: 'U32' },
  { kind: 'uint16', ctor: Uint16Array, dtype: 'U16' },
  { kind: 'uint8', ctor: Uint8Array, dtype: 'U8' },
  { kind: 'uint8clamped', ctor: Uint8ClampedArray, dtype: 'U8' },
  { kind: 'bigint64', ctor: BigInt64Array, dtype: 'I64' },
  { kind: 'biguint64', ctor: BigUint64Array, dtype: 'U64' },
];

function kindOf(v: unknown): (typeof KINDS)[number] | undefined {
  // Exact class match (Buffer is a Uint8Array subclass and encodes as uint8).
  for (const k of KINDS) if (v instanceof k.ctor && (v.constructor === k.ctor || k.kind === 'uint8')) return k;
  return undefined;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v !== 'object') return typeof v;
  return (v as object).constructor?.name ?? 'an object without prototype';
}

/**
 * Encodes run state as JSON-able data. Typed arrays become `{ "$typed": kind, "b64": … }` (the
 * tagged form of lib/codec.ts, extended to every typed-array class) or, above
 * STATE_INLINE_MAX_BYTES, `{ "$typed": kind, "tensor": "state/<k>" }` with the bytes passed to
 * `sink`; NaN, ±Infinity and −0 become `{ "$number": "NaN" | "Infinity" | "-Infinity" | "-0" }`;
 * bigints `{ "$bigint": "123" }`. `undefined` object fields are dropped (as in JSON). Anything else
 * (functions, symbols, Map, Set, Date, class instances, cycles) throws, naming the path.
 */
export function encodeState(value: unknown, sink?: (bytes: AnyTyped, kind: TypedKind, dtype: SafetensorsDType) => string): unknown {
  const seen = new Set<object>();
  const enc = (v: unknown, path: string): unknown => {
    if (v === null || typeof v === 'string' || typeof v === 'boolean') return v;
    if (typeof v === 'number') {
      if (Number.isNaN(v)) return { $number: 'NaN' };
      if (v === Infinity) return { $number: 'Infinity' };
      if (v === -Infinity) return { $number: '-Infinity' };
      if (Object.is(v, -0)) return { $number: '-0' };
      return v;
    }
    if (typeof v === 'bigint') return { $bigint: v.toString() };
    if (typeof v !== 'object') throw new TypeError(`${path}: cannot store a ${typeof v} in a checkpoint`);
    const k = kindOf(v);
    if (k) {
      const a = v as AnyTyped;
      if (sink && a.byteLength > STATE_INLINE_MAX_BYTES) return { $typed: k.kind, tensor: sink(a, k.kind, k.dtype) };
      return { $typed: k.kind, b64: toBase64(new Uint8Array(a.buffer, a.byteOffset, a.byteLength)) };
    }
    if (seen.has(v)) throw new TypeError(`${path}: circular reference`);
    seen.add(v);
    try {
      if (Array.isArray(v)) return v.map((x, i) => (x === undefined ? null : enc(x, `${path}.${i}`)));
      const proto = Object.getPrototypeOf(v);
      if (proto !== Object.prototype && proto !== null) {
        throw new TypeError(`${path}: cannot store a ${describe(v)} in a checkpoint; use plain objects, arrays and typed arrays`);
      }
      const out: Record<string, unknown> = {};
      for (const [key, x] of Object.entries(v)) if (x !== undefined) out[key] = enc(x, `${path}.${key}`);
      return out;
    } finally {
      seen.delete(v);
    }
  };
  return enc(value, 'state');
}

/** Inverse of `encodeState`; `source` returns the tensor named by a `"tensor"` reference. */
export function decodeState(json: unknown, source?: (name: string, kind: TypedKind, path: string) => AnyTyped): unknown {
  const dec = (v: unknown, path: string): unknown => {
    if (v === null || typeof v !== 'object') return v;
    if (Array.isArray(v)) return v.map((x, i) => dec(x, `${path}.${i}`));
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o);
    if (typeof o['$typed'] === 'string' && keys.length === 2) {
      const k = KINDS.find((x) => x.kind === o['$typed']);
      if (!k) throw new TypeError(`${path}: unknown typed-array kind ${String(o['$typed'])}`);
      if (typeof o['b64'] === 'string') {
        const bytes = fromBase64(o['b64']);
        if (bytes === undefined) throw new TypeError(`${path}: "b64" is not canonical base64 text`);
        if (bytes.length % k.ctor.BYTES_PER_ELEMENT !== 0) throw new TypeError(`${path}: ${bytes.length} bytes is not a whole number of ${k.kind} elements`);
        const buf = new ArrayBuffer(bytes.length);
        new Uint8Array(buf).set(bytes);
        return new k.ctor(buf);
      }
      if (typeof o['tensor'] === 'string') {
        if (!source) throw new TypeError(`${path}: refers to tensor ${o['tensor']} but no tensors were given`);
        return source(o['tensor'], k.kind, path);
      }
    }
    if (keys.length === 1 && typeof o['$number'] === 'string') {
      const s = o['$number'];
      if (s === 'NaN') return NaN;
      if (s === 'Infinity') return Infinity;
      if (s === '-Infinity') return -Infinity;
      if (s === '-0') return -0;
      throw new TypeError(`${path}: bad $number ${s}`);
    }
    if (keys.length === 1 && typeof o['$bigint'] === 'string') return BigInt(o['$bigint']);
    const out: Record<string, unknown> = {};
    for (const [key, x] of Object.entries(o)) out[key] = dec(x, `${path}.${key}`);
    return out;
  };
  return dec(json, 'state');
}

// ---------------------------------------------------------------------------------------------
// Config comparison
// ---------------------------------------------------------------------------------------------

const short = (v: unknown, max = 120): string => {
  const s = v === undefined ? '(absent)' : JSON.stringify(v);
  return s.length > max ? `${s.slice(0, max)}…` : s;
};

/** First path at which two JSON values differ, with both values; null when equal. */
export function firstDifference(a: unknown, b: unknown, path = ''): { path: string; a: unknown; b: unknown } | null {
  if (Object.is(a, b)) return null;
  const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null;
  if (!isObj(a) || !isObj(b) || Array.isArray(a) !== Array.isArray(b)) return { path: path || '(root)', a, b };
  if (Array.isArray(a) && Array.isArray(b) && a.length !== b.length) {
    return { path: `${path || '(root)'}.length`, a: a.length, b: b.length };
  }
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
  for (const k of keys) {
    const d = firstDifference(a[k], b[k], path ? `${path}.${k}` : k);
    if (d) return d;
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Saving
// ---------------------------------------------------------------------------------------------

const TF_TO_ST: Readonly<Record<string, SafetensorsDType>> = { float32: 'F32', int32: 'I32', bool: 'BOOL' };
const ST_TO_TF: Readonly<Partial<Record<SafetensorsDType, tf.DataType>>> = { F32: 'float32', I32: 'int32', BOOL: 'bool' };

async function tensorToST(name: string, t: tf.Tensor): Promise<SafetensorsTensor> {
  const dtype = TF_TO_ST[t.dtype];
  if (!dtype) throw new TypeError(`saveCheckpoint: tensor ${name} has dtype ${t.dtype}, which checkpoints do not store`);
  const raw = await t.data();
  const data: TensorData = dtype === 'BOOL' ? Uint8Array.from(raw as ArrayLike<number>) : (raw as Float32Array | Int32Array);
  return { dtype, shape: [...t.shape], data };
}

function isParamRecord(x: unknown): x is PlainTensor {
  return typeof x === 'object' && x !== null && !(x instanceof tf.Tensor) && 'shape' in x && 'data' in x;
}

function entriesOf(src: ParamSource): [string, tf.Tensor | PlainTensor][] {
  if (src instanceof Map) return [...(src as ReadonlyMap<string, tf.Tensor | PlainTensor>)];
  return Object.entries(src);
}

/** tfjs variable name → our parameter name. */
function variableNames(src: ParamSource | ParamTarget): Map<string, string> {
  const out = new Map<string, string>();
  for (const [n, t] of entriesOf(src as ParamSource)) if (t instanceof tf.Variable) out.set(t.name, n);
  return out;
}

/** The optimizer's tf.Variable fields other than its slots (Adam: accBeta1, accBeta2). */
function optimizerVars(opt: tf.Optimizer): Record<string, tf.Variable> {
  const out: Record<string, tf.Variable> = {};
  for (const [k, v] of Object.entries(opt)) if (v instanceof tf.Variable) out[k] = v;
  return out;
}

/** Where an optimizer's state lives in the file: the unnamed one at `optimizer/…`, a named one at `optimizer/<name>/…`. */
function optimizerKeys(name?: string): { iter: string; slots: string; vars: string; meta: string } {
  const base = name === undefined ? OPT : `${OPT}${name}/`;
  return { iter: `${base}iter`, slots: `${base}slots/`, vars: `${base}vars/`, meta: name === undefined ? META_OPTIMIZER : `${META_OPTIMIZER}.${name}` };
}

const RESERVED_OPTIMIZER_NAMES = new Set(['iter', 'slots', 'vars']);

function checkOptimizerName(name: string, where: string): void {
  if (!/^[A-Za-z0-9_-]+$/.test(name) || RESERVED_OPTIMIZER_NAMES.has(name)) {
    throw new RangeError(`${where}: optimizer name '${name}' must be letters, digits, _ or - and not iter, slots or vars`);
  }
}

/** Puts one optimizer's tensors into `tensors`; returns its metadata JSON. */
async function saveOptimizer(
  opt: tf.Optimizer,
  byVar: Map<string, string>,
  tensors: Record<string, SafetensorsTensor>,
  keys: ReturnType<typeof optimizerKeys>,
): Promise<string> {
  const weights = await opt.getWeights();
  const iterT = weights[0];
  if (iterT?.name !== 'iter') throw new Error('saveCheckpoint: optimizer.getWeights() did not start with the iteration count');
  tensors[keys.iter] = { dtype: 'I32', shape: [], data: Int32Array.from(await iterT.tensor.data()) };
  iterT.tensor.dispose();
  const slots: string[] = [];
  for (const w of weights.slice(1)) {
    const cut = w.name.lastIndexOf('/');
    const varName = cut < 0 ? w.name : w.name.slice(0, cut);
    const slot = cut < 0 ? 'value' : w.name.slice(cut + 1);
    const param = byVar.get(varName);
    if (param === undefined) {
      throw new Error(`saveCheckpoint: the optimizer holds state (${w.name}) for a variable that is not among params; pass every variable it trains`);
    }
    const key = `${keys.slots}${param}/${slot}`;
    if (tensors[key]) throw new Error(`saveCheckpoint: duplicate optimizer slot ${key}`);
    tensors[key] = await tensorToST(key, w.tensor);
    slots.push(key);
  }
  for (const [field, v] of Object.entries(optimizerVars(opt))) tensors[`${keys.vars}${field}`] = await tensorToST(field, v);
  return JSON.stringify({ className: opt.getClassName(), config: opt.getConfig(), slots });
}

/**
 * The tensors and metadata of a checkpoint file (what `checkpointBytes` encodes and lib/io's
 * `saveCheckpoint` writes), checksum key `rxrl.sha256`.
 * @param opts What to save.
 * @returns The safetensors tensors by name and the `__metadata__` strings.
 */
export async function checkpointTensors(
  opts: SaveCheckpointOptions,
): Promise<{ tensors: Record<string, SafetensorsTensor>; metadata: Record<string, string> }> {
  const tensors: Record<string, SafetensorsTensor> = {};
  for (const [name, t] of entriesOf(opts.params)) {
    if (name.startsWith(OPT) || name.startsWith(STATE) || name === '__metadata__') {
      throw new RangeError(`saveCheckpoint: parameter name ${name} is reserved (optimizer/, state/, __metadata__)`);
    }
    if (t instanceof tf.Tensor) tensors[name] = await tensorToST(name, t);
    else if (isParamRecord(t)) tensors[name] = { dtype: 'F32', shape: [...t.shape], data: t.data };
    else throw new TypeError(`saveCheckpoint: parameter ${name} is neither a tf.Tensor nor { shape, data }`);
  }
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(opts.metadata ?? {})) {
    if (k.startsWith('rxrl.')) throw new RangeError(`saveCheckpoint: metadata key ${k} is reserved`);
    metadata[k] = v;
  }
  metadata[META_FORMAT] = CHECKPOINT_FORMAT;
  const configJson = JSON.stringify(opts.config ?? null);
  if (configJson === undefined) throw new TypeError('saveCheckpoint: config is not JSON-serialisable');
  metadata[META_CONFIG] = configJson;

  const byVar = variableNames(opts.params);
  if (opts.optimizer) metadata[META_OPTIMIZER] = await saveOptimizer(opts.optimizer, byVar, tensors, optimizerKeys());
  for (const [name, opt] of Object.entries(opts.optimizers ?? {})) {
    checkOptimizerName(name, 'saveCheckpoint');
    const keys = optimizerKeys(name);
    metadata[keys.meta] = await saveOptimizer(opt, byVar, tensors, keys);
  }

  let k = 0;
  const stateJson = encodeState(opts.state ?? {}, (a, _kind, dtype) => {
    const name = `${STATE}${k++}`;
    const data = a instanceof Uint8ClampedArray ? new Uint8Array(a.buffer, a.byteOffset, a.length) : a;
    tensors[name] = { dtype, shape: [a.length], data };
    return name;
  });
  metadata[META_STATE] = JSON.stringify(stateJson);
  return { tensors, metadata };
}

/**
 * A checkpoint as the bytes of one safetensors file (see the module doc): a browser download, a
 * message between workers; `loadCheckpointBytes` reads it back, as lib/io's `loadCheckpoint` reads
 * the same bytes from disk.
 * @param opts What to save.
 * @returns The file's bytes, checksum sealed.
 */
export async function checkpointBytes(opts: SaveCheckpointOptions): Promise<Uint8Array<ArrayBuffer>> {
  const { tensors, metadata } = await checkpointTensors(opts);
  return safetensorsBytes(tensors, metadata, { checksumKey: META_SHA256 });
}

// ---------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------

const fmtShape = (s: readonly number[]): string => `[${s.join(',')}]`;

/** Refuses a float tensor holding NaN or ±Infinity, naming it (and the first bad index). */
function checkFinite(path: string, what: string, t: SafetensorsTensor): void {
  const d = t.data;
  if (!(d instanceof Float32Array) && !(d instanceof Float64Array)) return;
  for (let i = 0; i < d.length; i++) {
    if (!Number.isFinite(d[i]!)) throw new CheckpointError(path, `${what} holds ${d[i]} at flat index ${i}; refusing to load non-finite weights`);
  }
}

/** A checkpoint's bytes and where they came from (a path, a file name), for errors. */
export interface CheckpointSource {
  readonly bytes: Uint8Array;
  readonly label: string;
}

/** Where checkpoint bytes came from, for errors (`checkpoint <label>: …`). */
export interface CheckpointLabel {
  /** A path or file name; default `(in memory)`. */
  label?: string | undefined;
}

/**
 * Verifies a checkpoint's bytes and decodes them, without assigning anything.
 * @param bytes The whole safetensors file.
 * @param opts `label` for errors; `expectConfig`: refuse a checkpoint written for another config.
 * @returns The config, run state, metadata, weights and optimizer states.
 */
export async function readCheckpointBytes(bytes: Uint8Array, opts: CheckpointLabel & { expectConfig?: unknown } = {}): Promise<CheckpointContents> {
  const path = opts.label ?? '(in memory)';
  const fail = (detail: string): never => {
    throw new CheckpointError(path, detail);
  };
  let parsed: ParsedSafetensors;
  try {
    parsed = parseSafetensors(bytes, `checkpoint ${path}`);
  } catch (e) {
    if (e instanceof SafetensorsError) throw new CheckpointError(path, e.detail);
    throw e;
  }
  const meta = parsed.header.metadata;
  const sum = await verifyChecksum(parsed, META_SHA256);
  if (sum === 'missing') {
    fail(
      meta[META_FORMAT] === undefined
        ? 'is a safetensors file but not an rxrl checkpoint (no rxrl.format / rxrl.sha256 metadata)'
        : 'has no rxrl.sha256 checksum',
    );
  }
  if (sum === 'malformed') fail('has a malformed rxrl.sha256 checksum (file corrupted)');
  if (sum === 'mismatch') fail('checksum mismatch (file corrupted)');
  if (meta[META_FORMAT] !== CHECKPOINT_FORMAT) {
    fail(`has format ${short(meta[META_FORMAT])}; this version of rxrl reads format ${CHECKPOINT_FORMAT}`);
  }
  const parseMeta = (key: string): unknown => {
    const s = meta[key];
    if (s === undefined) return fail(`has no ${key} metadata`);
    try {
      return JSON.parse(s);
    } catch (e) {
      return fail(`${key} is not valid JSON (${(e as Error).message})`);
    }
  };
  const config = parseMeta(META_CONFIG);
  if (opts.expectConfig !== undefined) {
    const expected = JSON.parse(JSON.stringify(opts.expectConfig)) as unknown;
    const d = firstDifference(config, expected);
    if (d) fail(`was written for config ${short(config, 200)}; this run's config differs at ${d.path}: ${short(d.a)} (checkpoint) vs ${short(d.b)} (this run)`);
  }

  const tensorOf = (name: string): SafetensorsTensor => parsed.tensor(name);
  const stateRaw = parseMeta(META_STATE);
  let state: Record<string, unknown>;
  try {
    state = decodeState(stateRaw, (name, kind, p) => {
      const info = parsed.header.byName.get(name);
      if (!info) return fail(`${p} refers to tensor ${name}, which the file does not have`);
      const k = KINDS.find((x) => x.kind === kind)!;
      if (info.dtype !== k.dtype || info.shape.length !== 1)
        return fail(`tensor ${name} (${info.dtype} ${fmtShape(info.shape)}) does not hold the ${kind} array ${p}`);
      const raw = parsed.rawBytes(name);
      const buf = new ArrayBuffer(raw.length);
      new Uint8Array(buf).set(raw);
      return new k.ctor(buf);
    }) as Record<string, unknown>;
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    return fail(`rxrl.state cannot be decoded: ${(e as Error).message}`);
  }

  const params: Record<string, SafetensorsTensor> = {};
  for (const info of parsed.header.tensors) {
    if (info.name.startsWith(OPT) || info.name.startsWith(STATE)) continue;
    params[info.name] = tensorOf(info.name);
  }

  const readOptimizer = (keys: ReturnType<typeof optimizerKeys>): OptimizerState => {
    const o = parseMeta(keys.meta) as { className?: unknown; config?: unknown; slots?: unknown };
    if (typeof o.className !== 'string' || !Array.isArray(o.slots) || !o.slots.every((s) => typeof s === 'string')) {
      fail(`${keys.meta} metadata is malformed`);
    }
    const iterInfo = parsed.header.byName.get(keys.iter);
    if (iterInfo?.dtype !== 'I32' || iterInfo.shape.length !== 0) fail(`tensor ${keys.iter} is missing or not an I32 scalar`);
    const iterations = (tensorOf(keys.iter).data as Int32Array)[0]!;
    const slots = (o.slots as string[]).map((key) => {
      if (!key.startsWith(keys.slots) || !parsed.header.byName.has(key)) return fail(`optimizer slot ${key} is listed in ${keys.meta} but missing`);
      const rest = key.slice(keys.slots.length);
      const cut = rest.lastIndexOf('/');
      return { param: rest.slice(0, cut), slot: rest.slice(cut + 1), tensor: tensorOf(key) };
    });
    const vars: Record<string, SafetensorsTensor> = {};
    for (const info of parsed.header.tensors) if (info.name.startsWith(keys.vars)) vars[info.name.slice(keys.vars.length)] = tensorOf(info.name);
    return { className: o.className as string, config: o.config, iterations, slots, vars };
  };
  const optimizer = meta[META_OPTIMIZER] !== undefined ? readOptimizer(optimizerKeys()) : null;
  const optimizers: Record<string, OptimizerState> = {};
  for (const key of Object.keys(meta)) {
    if (!key.startsWith(`${META_OPTIMIZER}.`)) continue;
    const name = key.slice(META_OPTIMIZER.length + 1);
    if (!/^[A-Za-z0-9_-]+$/.test(name) || RESERVED_OPTIMIZER_NAMES.has(name)) fail(`has a malformed optimizer name in ${key}`);
    optimizers[name] = readOptimizer(optimizerKeys(name));
  }
  return { config, state, metadata: { ...meta }, params, optimizer, optimizers };
}

function targetEntries(t: ParamTarget): [string, tf.Variable][] {
  if (t instanceof Map) return [...(t as ReadonlyMap<string, tf.Variable>)];
  return Object.entries(t);
}

/** What `loadCheckpointBytes` (and lib/io's `loadCheckpoint`) return. */
export interface LoadedCheckpoint {
  config: unknown;
  state: Record<string, unknown>;
  metadata: Readonly<Record<string, string>>;
  /** The (single) optimizer's iteration count, or null without one. */
  iterations: number | null;
}

/**
 * Verifies a checkpoint's bytes completely, then loads weights into `params` and state into
 * `optimizer`. Nothing is assigned unless everything checks out.
 * @param bytes The whole safetensors file.
 * @param opts What to load into (see `LoadCheckpointOptions`) and `label` for errors.
 * @returns The config and run state.
 */
export async function loadCheckpointBytes(bytes: Uint8Array, opts: LoadCheckpointOptions & CheckpointLabel = {}): Promise<LoadedCheckpoint> {
  const path = opts.label ?? '(in memory)';
  const fail = (detail: string): never => {
    throw new CheckpointError(path, detail);
  };
  const ck = await readCheckpointBytes(bytes, { label: path, expectConfig: opts.expectConfig });
  const strict = opts.strict ?? true;
  const plan: { v: tf.Variable; t: SafetensorsTensor }[] = [];
  const targets = opts.params ? targetEntries(opts.params) : [];
  const targetByName = new Map(targets);

  if (opts.params) {
    const missing: string[] = [];
    for (const [name, v] of targets) {
      const t = ck.params[name];
      if (!t) {
        missing.push(name);
        continue;
      }
      const want = TF_TO_ST[v.dtype];
      if (t.dtype !== want) fail(`tensor ${name} has dtype ${t.dtype}, the model expects ${want ?? v.dtype}`);
      if (t.shape.length !== v.shape.length || t.shape.some((d, i) => d !== v.shape[i])) {
        fail(`tensor ${name} has shape ${fmtShape(t.shape)}, the model expects ${fmtShape(v.shape)}`);
      }
      checkFinite(path, `tensor ${name}`, t);
      plan.push({ v, t });
    }
    if (missing.length) {
      fail(
        `is missing ${missing.length === 1 ? 'tensor' : `${missing.length} tensors`} the model has: ${missing.slice(0, 8).join(', ')}${missing.length > 8 ? ', …' : ''}`,
      );
    }
    if (strict) {
      const extra = Object.keys(ck.params).filter((n) => !targetByName.has(n));
      if (extra.length) {
        fail(
          `has ${extra.length === 1 ? 'a tensor' : `${extra.length} tensors`} the model does not: ${extra.slice(0, 8).join(', ')}${extra.length > 8 ? ', …' : ''} (pass strict: false to ignore)`,
        );
      }
    }
  }

  /** Checks one optimizer's saved state against this run's optimizer; returns its extra variables to assign. */
  const verifyOptimizer = (opt: tf.Optimizer, os: OptimizerState | null | undefined, label: string, slotsAt: string): [tf.Variable, SafetensorsTensor][] => {
    const out: [tf.Variable, SafetensorsTensor][] = [];
    if (!opts.params) fail('restoring an optimizer needs params (to map its state to variables)');
    if (!os) return fail(`has no ${label} state`);
    if (os.className !== opt.getClassName()) fail(`holds ${os.className} ${label} state; this run's optimizer is ${opt.getClassName()}`);
    for (const s of os.slots) {
      const v = targetByName.get(s.param);
      if (!v) fail(`${label} state ${slotsAt}${s.param}/${s.slot} is for a parameter the model does not have`);
      if (s.tensor.shape.length !== v!.shape.length || s.tensor.shape.some((d, i) => d !== v!.shape[i])) {
        fail(`${label} state ${slotsAt}${s.param}/${s.slot} has shape ${fmtShape(s.tensor.shape)}, the model expects ${fmtShape(v!.shape)}`);
      }
      if (s.tensor.dtype !== 'F32') fail(`${label} state ${slotsAt}${s.param}/${s.slot} has dtype ${s.tensor.dtype}, expected F32`);
      checkFinite(path, `${label} state ${slotsAt}${s.param}/${s.slot}`, s.tensor);
    }
    const have = optimizerVars(opt);
    for (const [field, t] of Object.entries(os.vars)) {
      const v = have[field];
      if (!v) fail(`${label} variable ${field} does not exist on this run's ${opt.getClassName()}`);
      if (TF_TO_ST[v!.dtype] !== t.dtype || t.shape.length !== v!.shape.length || t.shape.some((d, i) => d !== v!.shape[i])) {
        fail(`${label} variable ${field} is ${t.dtype} ${fmtShape(t.shape)}, this run's is ${TF_TO_ST[v!.dtype] ?? v!.dtype} ${fmtShape(v!.shape)}`);
      }
      out.push([v!, t]);
    }
    return out;
  };
  const restores: { opt: tf.Optimizer; os: OptimizerState; vars: [tf.Variable, SafetensorsTensor][] }[] = [];
  if (opts.optimizer) {
    const vars = verifyOptimizer(opts.optimizer, ck.optimizer, 'optimizer', optimizerKeys().slots);
    restores.push({ opt: opts.optimizer, os: ck.optimizer!, vars });
  }
  for (const [name, opt] of Object.entries(opts.optimizers ?? {})) {
    const vars = verifyOptimizer(opt, ck.optimizers[name], `optimizer ${name}`, optimizerKeys(name).slots);
    restores.push({ opt, os: ck.optimizers[name]!, vars });
  }

  // ---- Everything verified: assign. ----
  for (const { v, t } of plan) {
    tf.tidy(() => v.assign(tf.tensor(t.data as Float32Array | Int32Array | Uint8Array, [...t.shape], ST_TO_TF[t.dtype])));
  }
  for (const { opt, os, vars } of restores) {
    const old = await opt.getWeights();
    const weights: { name: string; tensor: tf.Tensor }[] = [{ name: 'iter', tensor: tf.scalar(os.iterations, 'int32') }];
    for (const s of os.slots) {
      const v = targetByName.get(s.param)!;
      weights.push({ name: `${v.name}/${s.slot}`, tensor: tf.tensor(s.tensor.data as Float32Array, [...s.tensor.shape], 'float32') });
    }
    await opt.setWeights(weights);
    // setWeights wraps our tensors in new variables (sharing their data) and drops the old slots.
    for (const w of weights) w.tensor.dispose();
    const now = await opt.getWeights();
    now[0]?.tensor.dispose(); // a fresh iteration scalar
    const current = new Set(now.slice(1).map((w) => w.tensor));
    for (const w of old) if (!current.has(w.tensor)) w.tensor.dispose();
    for (const [v, t] of vars) {
      tf.tidy(() => v.assign(tf.tensor(t.data as Float32Array | Int32Array, [...t.shape], ST_TO_TF[t.dtype])));
    }
  }
  return { config: ck.config, state: ck.state, metadata: ck.metadata, iterations: ck.optimizer?.iterations ?? null };
}
