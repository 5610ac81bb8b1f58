import { readFile } from 'node:fs/promises';
import { ModelError } from './model-error.js';

/** How a derived input is computed from two feature values `[a, b]`. */
export const DERIVATIONS = {
  /** `a / b - 1`, e.g. `vwap_gap = price / vwap - 1`. */
  ratio_minus_one: (a: number, b: number): number => a / b - 1,
  /** `a / b`. */
  ratio: (a: number, b: number): number => a / b,
  /** `a - b`. */
  difference: (a: number, b: number): number => a - b,
} as const;

export type Derivation = keyof typeof DERIVATIONS;

/** One model input column: a feature value taken as is, or derived from two of them. */
export type ModelInput =
  { readonly name: string; readonly feature: string } | { readonly name: string; readonly derive: Derivation; readonly of: readonly [string, string] };

/**
 * The JSON file that travels with an ONNX model (`signal_model.json` beside `signal_model.onnx`)
 * and says how to feed it and read it. See `models/README.md` for the format.
 */
export interface ModelSidecar {
  /** The file it was read from, for error messages. */
  readonly file: string;
  /** Model version, stored with every signal as `meta.model_version`. */
  readonly version: string;
  /** Name of the model's float tensor input of shape `[N, inputs.length]`. */
  readonly inputName: string;
  /** Input columns in the order the model expects them. */
  readonly inputs: readonly ModelInput[];
  /** Names of the model's outputs: labels `[N]` and class probabilities `[N, classes.length]`. */
  readonly outputs: { readonly label: string; readonly probabilities: string };
  /** Class labels in the order of the probability columns. */
  readonly classes: readonly number[];
  /** Signal name per class label; a class without a name (e.g. `0`) emits nothing. */
  readonly signalNames: ReadonlyMap<number, string>;
  /** Minimum probability of the predicted class for a signal to be emitted. */
  readonly threshold: number;
  /** Lower-case hex SHA-256 of the model file, checked at load when present. */
  readonly sha256: string | undefined;
}

/** A model input row built from a snapshot, with the values behind it (for `meta.inputs`). */
export interface ModelInputRow {
  readonly row: number[];
  /** Every input by name plus the features derived inputs were computed from. */
  readonly inputs: Record<string, number>;
}

/** `models/x.onnx` → `models/x.json`: where a model's sidecar is looked for by default. */
export function defaultSidecarPath(modelPath: string): string {
  return `${modelPath.replace(/\.onnx$/i, '')}.json`;
}

/** Reads and validates a sidecar file; every error names the file, and the key when there is one. */
export async function loadModelSidecar(file: string): Promise<ModelSidecar> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new ModelError(`${file}: cannot read model sidecar: ${(cause as Error).message}`, { code: 'MODEL_FILE_NOT_FOUND', file, cause });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new ModelError(`${file}: not valid JSON: ${(cause as Error).message}`, { code: 'MODEL_SIDECAR_INVALID', file, cause });
  }
  return parseModelSidecar(json, file);
}

/** Validates a parsed sidecar document; `file` only labels errors. Unknown top-level keys are ignored. */
export function parseModelSidecar(json: unknown, file: string): ModelSidecar {
  const invalid = (key: string, reason: string): ModelError => new ModelError(`${file}: ${key}: ${reason}`, { code: 'MODEL_SIDECAR_INVALID', file, key });

  if (!isObject(json)) throw invalid('(root)', 'must be a JSON object');
  const text = (key: string, value: unknown): string => {
    if (typeof value !== 'string' || value.trim() === '') throw invalid(key, `must be a non-empty string (got ${show(value)})`);
    return value;
  };

  const version = text('version', json['version']);
  const inputName = text('input_name', json['input_name']);

  const rawInputs = json['inputs'];
  if (!Array.isArray(rawInputs) || rawInputs.length === 0) throw invalid('inputs', 'must be a non-empty array');
  const inputs = rawInputs.map((raw: unknown, i): ModelInput => {
    const key = `inputs[${i}]`;
    // A bare string is shorthand for a feature input of the same name.
    if (typeof raw === 'string') return { name: text(key, raw), feature: raw };
    if (!isObject(raw)) throw invalid(key, 'must be a feature name or an object');
    const name = text(`${key}.name`, raw['name']);
    const hasFeature = 'feature' in raw,
      hasDerive = 'derive' in raw;
    if (hasFeature === hasDerive) throw invalid(key, 'must have exactly one of "feature" or "derive"');
    if (hasFeature) return { name, feature: text(`${key}.feature`, raw['feature']) };
    const derive = raw['derive'];
    if (typeof derive !== 'string' || !Object.hasOwn(DERIVATIONS, derive)) {
      throw invalid(`${key}.derive`, `must be one of ${Object.keys(DERIVATIONS).join(', ')} (got ${show(derive)})`);
    }
    const of = raw['of'];
    if (!Array.isArray(of) || of.length !== 2) throw invalid(`${key}.of`, 'must be an array of two feature names');
    return { name, derive: derive as Derivation, of: [text(`${key}.of[0]`, of[0]), text(`${key}.of[1]`, of[1])] };
  });
  const seen = new Set<string>();
  inputs.forEach((input, i) => {
    if (seen.has(input.name)) throw invalid(`inputs[${i}].name`, `duplicate input "${input.name}"`);
    seen.add(input.name);
  });

  const rawOutputs = json['outputs'];
  if (!isObject(rawOutputs)) throw invalid('outputs', 'must be an object { label, probabilities }');
  const outputs = { label: text('outputs.label', rawOutputs['label']), probabilities: text('outputs.probabilities', rawOutputs['probabilities']) };

  const rawClasses = json['classes'];
  if (!Array.isArray(rawClasses) || rawClasses.length < 2) throw invalid('classes', 'must be an array of at least two integer labels');
  const classes = rawClasses.map((c: unknown, i) => {
    if (typeof c !== 'number' || !Number.isSafeInteger(c)) throw invalid(`classes[${i}]`, `must be an integer (got ${show(c)})`);
    return c;
  });
  if (new Set(classes).size !== classes.length) throw invalid('classes', 'must not repeat a label');

  const rawNames = json['signal_names'];
  if (!isObject(rawNames)) throw invalid('signal_names', 'must be an object mapping class labels to signal names');
  const signalNames = new Map<number, string>();
  for (const [label, name] of Object.entries(rawNames)) {
    const key = `signal_names.${label}`;
    const value = Number(label);
    if (!/^-?\d+$/.test(label) || !classes.includes(value)) throw invalid(key, `"${label}" is not one of classes [${classes.join(', ')}]`);
    signalNames.set(value, text(key, name));
  }

  const threshold = json['threshold'];
  if (typeof threshold !== 'number' || !(threshold >= 0 && threshold <= 1)) {
    throw invalid('threshold', `must be a number between 0 and 1 (got ${show(threshold)})`);
  }

  const sha256 = json['sha256'];
  if (sha256 !== undefined && (typeof sha256 !== 'string' || !/^[0-9a-fA-F]{64}$/.test(sha256))) {
    throw invalid('sha256', `must be 64 hex digits when present (got ${show(sha256)})`);
  }

  return {
    file,
    version,
    inputName,
    inputs,
    outputs,
    classes,
    signalNames,
    threshold,
    sha256: sha256 === undefined ? undefined : sha256.toLowerCase(),
  };
}

/**
 * Builds the model's input row from feature values in sidecar order. `undefined` when any value
 * it needs is `null` (warming up), absent, or not finite (e.g. a ratio over a zero VWAP).
 */
export function buildInputRow(sidecar: ModelSidecar, values: Readonly<Record<string, number | null>>): ModelInputRow | undefined {
  const row: number[] = [];
  const inputs: Record<string, number> = {};
  const feature = (name: string): number | undefined => {
    const value = values[name];
    return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
  };
  for (const input of sidecar.inputs) {
    let value: number | undefined;
    if ('feature' in input) {
      value = feature(input.feature);
    } else {
      const a = feature(input.of[0]),
        b = feature(input.of[1]);
      if (a === undefined || b === undefined) return undefined;
      inputs[input.of[0]] = a;
      inputs[input.of[1]] = b;
      value = DERIVATIONS[input.derive](a, b);
    }
    if (value === undefined || !Number.isFinite(value)) return undefined;
    row.push(value);
    inputs[input.name] = value;
  }
  return { row, inputs };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function show(value: unknown): string {
  return value === undefined ? 'nothing' : JSON.stringify(value);
}
