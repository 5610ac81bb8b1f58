import assert from 'node:assert/strict';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { FeatureSnapshot, InferenceAdapter, SignalEventV1 } from '../../pipeline/contracts/index.js';
import { CircuitBreaker, CircuitOpenError, ModelError, OnnxAdapter, OnnxPool, TimeoutError, loadModelSidecar } from '../../pipeline/inference/onnx/index.js';
import type { CircuitState, OnnxAdapterOptions, Prediction } from '../../pipeline/inference/onnx/index.js';

// Tests run from dist/test/unit; the model files are committed at the repo root.
const MODELS = fileURLToPath(new URL('../../../models/', import.meta.url));
const MODEL_PATH = join(MODELS, 'signal_model.onnx');
const SIDECAR_PATH = join(MODELS, 'signal_model.json');
const REFERENCE_PATH = join(MODELS, 'signal_model.reference.json');

interface Reference {
  readonly inputs: number[][];
  readonly labels: number[];
  readonly probabilities: number[][];
}

const reference = JSON.parse(await readFile(REFERENCE_PATH, 'utf8')) as Reference;

/** A snapshot whose model inputs are `[returns, momentum, volatility, rsi, vwap_gap]` (vwap_gap through price/vwap). */
function snapshotFor(row: readonly number[], overrides: Record<string, number | null> = {}): FeatureSnapshot {
  const [returns, momentum, volatility, rsi, vwapGap] = row as [number, number, number, number, number];
  const vwap = 400;
  const price = vwap * (1 + vwapGap);
  return {
    ver: 1,
    provider: 'synthetic',
    symbol: 'SPY',
    interval: '2s',
    ts: '2025-10-24T14:02:02Z',
    tsMs: Date.UTC(2025, 9, 24, 14, 2, 2),
    price,
    values: { returns, momentum, volatility, rsi, vwap, price, volume: 1200, skewness: 0.1, kurtosis: 3, ...overrides },
    windows: { returns: '30s', momentum: '30s', volatility: '5m', rsi: '14 bars', vwap: '1m' },
  };
}

/** A reference row the model confidently classifies as `label` (probability ≥ 0.9). */
function confidentRow(label: number): number[] {
  const classIndex = [-1, 0, 1].indexOf(label);
  const at = reference.labels.findIndex((l, i) => l === label && reference.probabilities[i][classIndex] >= 0.9);
  assert.ok(at >= 0, `reference has a confident ${label}`);
  return reference.inputs[at];
}

/** Test double for the fallback (the rules adapter): one fixed signal per snapshot, calls counted. */
class FakeRules implements InferenceAdapter {
  readonly name = 'rules';
  readonly version = 'rules-test';
  calls = 0;

  evaluate(snapshot: FeatureSnapshot): Promise<readonly SignalEventV1[]> {
    this.calls += 1;
    return Promise.resolve([
      {
        ver: 1,
        provider: snapshot.provider,
        symbol: snapshot.symbol,
        ts: snapshot.ts,
        name: 'price_momentum_up',
        value: 1,
        score: 0.8,
        meta: { window: '30s', price: snapshot.price, inputs: { momentum: snapshot.values['momentum'] ?? null }, adapter: 'rules' },
      },
    ]);
  }
}

async function withTempDir<T>(run: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'mdp-onnx-'));
  try {
    return await run(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function rejectsWith(promise: Promise<unknown>, code: string, ...mentions: string[]): Promise<ModelError> {
  const err = await promise.then(
    () => assert.fail(`expected a ModelError ${code}`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ModelError, `expected ModelError, got ${String(err)}`);
  assert.equal(err.code, code, err.message);
  for (const text of mentions) assert.ok(err.message.includes(text), `"${err.message}" should mention ${text}`);
  return err;
}

describe('OnnxAdapter (models/signal_model.onnx)', function () {
  this.timeout(30_000);
  let adapter: OnnxAdapter;

  before(async () => {
    adapter = await OnnxAdapter.create({ modelPath: MODEL_PATH, referencePath: REFERENCE_PATH });
  });
  after(async () => {
    await adapter.close();
  });

  it('reads the sidecar shipped with the model', () => {
    assert.equal(adapter.name, 'sklearn');
    assert.equal(adapter.version, '1.0.0');
    assert.deepEqual(
      adapter.sidecar.inputs.map((i) => i.name),
      ['returns', 'momentum', 'volatility', 'rsi', 'vwap_gap'],
    );
    assert.deepEqual(adapter.sidecar.classes, [-1, 0, 1]);
    assert.equal(adapter.sidecar.signalNames.get(1), 'ml_up');
    assert.equal(adapter.sidecar.signalNames.get(-1), 'ml_down');
    assert.equal(adapter.sidecar.signalNames.get(0), undefined);
  });

  it("reproduces scikit-learn's reference outputs: labels exactly, probabilities within 1e-5", async () => {
    const check = await adapter.validate(REFERENCE_PATH);
    assert.equal(check.rows, reference.labels.length);
    assert.equal(check.labelMismatches, 0);
    assert.ok(check.maxAbsDiff <= 1e-5, `max diff ${check.maxAbsDiff}`);
    assert.ok(new Set(reference.labels).size === 3, 'reference covers all three classes');

    const pool = await OnnxPool.start({
      modelPath: MODEL_PATH,
      inputName: 'features',
      outputs: { label: 'label', probabilities: 'probabilities' },
      width: 5,
      classCount: 3,
    });
    try {
      const prediction = await pool.predict(reference.inputs, { timeoutMs: 5000 });
      assert.deepEqual(prediction.labels, reference.labels);
      prediction.probabilities.forEach((row, r) =>
        row.forEach((p, c) => {
          assert.ok(Math.abs(p - reference.probabilities[r][c]) <= 1e-5, `row ${r} class ${c}: ${p} vs ${reference.probabilities[r][c]}`);
        }),
      );
    } finally {
      await pool.close();
    }
  });

  it('emits ml_up / ml_down with the probability as score and the inputs in meta', async () => {
    const up = await adapter.evaluate(snapshotFor(confidentRow(1)));
    assert.equal(up.length, 1);
    const signal = up[0];
    assert.equal(signal.name, 'ml_up');
    assert.equal(signal.value, 1);
    assert.ok(signal.score >= 0.9 && signal.score <= 1);
    assert.equal(signal.ts, '2025-10-24T14:02:02Z');
    assert.equal(signal.provider, 'synthetic');
    assert.equal(signal.symbol, 'SPY');
    assert.equal(signal.meta.adapter, 'sklearn');
    assert.equal(signal.meta.model_version, '1.0.0');
    assert.equal(signal.meta.window, '30s');
    assert.equal(signal.meta.price, signalPrice(confidentRow(1)));
    assert.deepEqual(Object.keys(signal.meta.inputs).sort(), ['momentum', 'price', 'returns', 'rsi', 'volatility', 'vwap', 'vwap_gap']);
    assert.ok(Math.abs(signal.meta.inputs['vwap_gap']! - confidentRow(1)[4]) < 1e-12);
    assert.equal(signal.meta['fallback'], undefined);

    const down = await adapter.evaluate(snapshotFor(confidentRow(-1)));
    assert.deepEqual(
      down.map((s) => [s.name, s.value]),
      [['ml_down', -1]],
    );
  });

  it('emits nothing for class 0 or below the threshold', async () => {
    assert.deepEqual(await adapter.evaluate(snapshotFor(confidentRow(0))), []);
    const unsure = reference.inputs.findIndex((_, i) => reference.labels[i] !== 0 && Math.max(...reference.probabilities[i]) < adapter.sidecar.threshold);
    assert.ok(unsure >= 0, 'reference has an up/down row below the threshold');
    assert.deepEqual(await adapter.evaluate(snapshotFor(reference.inputs[unsure])), []);
  });

  it('emits nothing and does not call the model while a needed feature warms up', async () => {
    let modelCalls = 0;
    const counted = await OnnxAdapter.create({
      modelPath: MODEL_PATH,
      predictOverride: (rows, model) => {
        modelCalls += 1;
        return model(rows);
      },
    });
    try {
      const row = confidentRow(1);
      assert.equal((await counted.evaluate(snapshotFor(row))).length, 1);
      assert.equal(modelCalls, 1);
      assert.deepEqual(await counted.evaluate(snapshotFor(row, { momentum: null })), []);
      assert.deepEqual(await counted.evaluate(snapshotFor(row, { vwap: null })), []);
      assert.deepEqual(await counted.evaluate(snapshotFor(row, { vwap: 0 })), [], 'price/vwap over a zero vwap is not finite');
      assert.equal(modelCalls, 1);
      assert.equal(counted.stats.notReady, 3);
      // A feature that does not feed the model may still be warming up.
      assert.equal((await counted.evaluate(snapshotFor(row, { kurtosis: null }))).length, 1);
    } finally {
      await counted.close();
    }
  });
});

function signalPrice(row: readonly number[]): number {
  return snapshotFor(row).price;
}

describe('OnnxAdapter breaker and fallback', function () {
  this.timeout(30_000);

  it('opens after 3 timeouts, falls back to the rules, and closes after a successful half-open trial', async () => {
    let nowMs = 1_000_000;
    let slow = true;
    let modelCalls = 0;
    const transitions: [CircuitState, CircuitState, string][] = [];
    const rules = new FakeRules();
    const options: OnnxAdapterOptions = {
      modelPath: MODEL_PATH,
      timeoutMs: 50,
      breaker: { failureThreshold: 3, cooldownMs: 5000, now: () => nowMs },
      fallback: rules,
      onTransition: (from, to, reason) => transitions.push([from, to, reason]),
      predictOverride: async (rows, model): Promise<Prediction> => {
        modelCalls += 1;
        if (slow) await sleep(150); // a model that answers after the 50 ms budget
        return model(rows);
      },
    };
    const ml = await OnnxAdapter.create(options);
    try {
      const snapshot = snapshotFor(confidentRow(1));

      for (let i = 1; i <= 3; i++) {
        const signals = await ml.evaluate(snapshot);
        assert.deepEqual(
          signals.map((s) => [s.name, s.meta.adapter, s.meta['fallback'], s.meta['fallback_reason']]),
          [['price_momentum_up', 'rules', 'rules', 'timeout']],
          `call ${i}`,
        );
        assert.equal(ml.breakerState, i < 3 ? 'closed' : 'open');
      }
      assert.equal(ml.stats.timeouts, 3);
      assert.equal(modelCalls, 3);

      // Open: the model is not called at all.
      const refused = await ml.evaluate(snapshot);
      assert.deepEqual(
        refused.map((s) => [s.meta['fallback'], s.meta['fallback_reason']]),
        [['rules', 'circuit_open']],
      );
      assert.equal(modelCalls, 3);
      nowMs += 4999;
      await ml.evaluate(snapshot);
      assert.equal(modelCalls, 3, 'still cooling down');

      // Cooldown over, model still slow: the trial fails and the breaker opens again.
      nowMs += 1;
      assert.equal((await ml.evaluate(snapshot))[0].meta['fallback_reason'], 'timeout');
      assert.equal(modelCalls, 4);
      assert.equal(ml.breakerState, 'open');

      // Next cooldown, model healthy: the trial succeeds, the breaker closes, the model answers.
      slow = false;
      nowMs += 5000;
      const healed = await ml.evaluate(snapshot);
      assert.deepEqual(
        healed.map((s) => [s.name, s.meta.adapter, s.meta['fallback']]),
        [['ml_up', 'sklearn', undefined]],
      );
      assert.equal(ml.breakerState, 'closed');
      assert.equal((await ml.evaluate(snapshot))[0].name, 'ml_up');

      assert.deepEqual(
        transitions.map(([from, to]) => `${from}->${to}`),
        ['closed->open', 'open->half-open', 'half-open->open', 'open->half-open', 'half-open->closed'],
      );
      assert.match(transitions[0][2], /3 consecutive failures; last: TimeoutError/);
      assert.match(transitions[2][2], /trial call failed: TimeoutError/);
      assert.deepEqual(ml.stats.transitions, { 'closed->open': 1, 'open->half-open': 2, 'half-open->open': 1, 'half-open->closed': 1 });
      assert.equal(rules.calls, 6);
      assert.equal(ml.stats.fallbacks, 6);
    } finally {
      await ml.close();
    }
  });

  it('emits nothing while the model is unavailable when there is no fallback', async () => {
    const ml = await OnnxAdapter.create({
      modelPath: MODEL_PATH,
      breaker: { failureThreshold: 1 },
      predictOverride: () => Promise.reject(new Error('model exploded')),
    });
    try {
      assert.deepEqual(await ml.evaluate(snapshotFor(confidentRow(1))), []);
      assert.equal(ml.breakerState, 'open');
      assert.deepEqual(await ml.evaluate(snapshotFor(confidentRow(1))), []);
      assert.equal(ml.stats.failures, 1);
      assert.equal(ml.stats.rejectedByBreaker, 1);
    } finally {
      await ml.close();
    }
  });
});

describe('OnnxPool', function () {
  this.timeout(30_000);

  it('recycles the worker after a timeout; the next call succeeds', async () => {
    const pool = await OnnxPool.start({
      modelPath: MODEL_PATH,
      inputName: 'features',
      outputs: { label: 'label', probabilities: 'probabilities' },
      width: 5,
      classCount: 3,
    });
    try {
      // 200k rows cannot be answered within 1 ms: a stand-in for a hung model call.
      const huge = Array.from({ length: 200_000 }, () => confidentRow(1));
      const err = await pool.predict(huge, { timeoutMs: 1 }).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(err instanceof TimeoutError, `expected TimeoutError, got ${String(err)}`);
      assert.equal(err.timeoutMs, 1);
      assert.deepEqual(pool.stats, { timeouts: 1, recycled: 1, crashed: 0, restartFailures: 0 });

      // The recycled worker loads the model again first: a generous budget, so a loaded machine
      // does not turn the check of recycling into one of speed.
      const next = await pool.predict([confidentRow(1), confidentRow(-1)], { timeoutMs: 30_000 });
      assert.deepEqual(next.labels, [1, -1]);
    } finally {
      await pool.close();
    }
    await rejectsWith(pool.predict([confidentRow(1)]), 'MODEL_CLOSED');
  });

  it('kills only the model worker process of a call cut off mid-inference, over and over', async () => {
    // Node 24 + onnxruntime-node: terminating a worker *thread* inside session.run aborted the
    // whole process about every other full unit run. Each round's call is cut off mid-run; the
    // test process (standing in for the mdp worker) must live on and the pool answer after.
    const pool = await OnnxPool.start({
      modelPath: MODEL_PATH,
      inputName: 'features',
      outputs: { label: 'label', probabilities: 'probabilities' },
      width: 5,
      classCount: 3,
      restartDelayMs: 10,
    });
    try {
      const huge = Array.from({ length: 50_000 }, () => confidentRow(1));
      for (let round = 0; round < 6; round++) {
        // A worker that has loaded the model (the previous round's replacement) takes the call at once.
        assert.deepEqual((await pool.predict([confidentRow(1)], { timeoutMs: 30_000 })).labels, [1]);
        const err = await pool.predict(huge, { timeoutMs: 5 }).then(
          () => undefined,
          (e: unknown) => e,
        );
        assert.ok(err instanceof TimeoutError, `round ${round}: expected TimeoutError, got ${String(err)}`);
      }
      assert.equal(pool.stats.recycled, 6);
      assert.equal(pool.stats.crashed, 0);
      const next = await pool.predict([confidentRow(1), confidentRow(-1)], { timeoutMs: 30_000 });
      assert.deepEqual(next.labels, [1, -1]);
    } finally {
      await pool.close();
    }
  });

  it('spreads concurrent calls over its workers', async () => {
    const pool = await OnnxPool.start({
      modelPath: MODEL_PATH,
      inputName: 'features',
      outputs: { label: 'label', probabilities: 'probabilities' },
      width: 5,
      classCount: 3,
      size: 2,
    });
    try {
      const results = await Promise.all(reference.inputs.map((row) => pool.predict([row])));
      assert.deepEqual(
        results.map((r) => r.labels[0]),
        reference.labels,
      );
    } finally {
      await pool.close();
    }
  });
});

describe('OnnxAdapter.create rejects bad models', function () {
  this.timeout(30_000);

  it('names the path of a corrupt model file', () =>
    withTempDir(async (dir) => {
      const modelPath = join(dir, 'broken.onnx');
      await writeFile(modelPath, 'this is not an onnx protobuf\n'.repeat(20));
      const sidecar = JSON.parse(await readFile(SIDECAR_PATH, 'utf8')) as Record<string, unknown>;
      delete sidecar['sha256'];
      await writeFile(join(dir, 'broken.json'), JSON.stringify(sidecar));
      const err = await rejectsWith(OnnxAdapter.create({ modelPath }), 'MODEL_LOAD', modelPath, 'cannot load ONNX model');
      assert.equal(err.file, modelPath);
    }));

  it('refuses a model whose bytes differ from the sidecar sha256', () =>
    withTempDir(async (dir) => {
      const modelPath = join(dir, 'swapped.onnx');
      await writeFile(modelPath, 'not the model the sidecar describes');
      const err = await rejectsWith(OnnxAdapter.create({ modelPath, sidecarPath: SIDECAR_PATH }), 'MODEL_MISMATCH', modelPath, 'sha256');
      assert.equal(err.key, 'sha256');
    }));

  it('names a missing model file', async () => {
    const modelPath = join(MODELS, 'no_such_model.onnx');
    await rejectsWith(OnnxAdapter.create({ modelPath, sidecarPath: SIDECAR_PATH }), 'MODEL_FILE_NOT_FOUND', modelPath);
  });

  it('names a missing model, not its sidecar, when neither is there', async () => {
    const modelPath = join(MODELS, 'no_such_model.onnx');
    const err = await rejectsWith(OnnxAdapter.create({ modelPath }), 'MODEL_FILE_NOT_FOUND', modelPath, 'no such model file');
    assert.equal(err.file, modelPath);
    assert.ok(!err.message.includes('no_such_model.json'), err.message);
  });

  it('refuses a model that does not reproduce its reference outputs', () =>
    withTempDir(async (dir) => {
      const tampered = { ...reference, labels: reference.labels.map((l, i) => (i === 0 ? (l === 1 ? -1 : 1) : l)) };
      const referencePath = join(dir, 'reference.json');
      await writeFile(referencePath, JSON.stringify(tampered));
      await rejectsWith(OnnxAdapter.create({ modelPath: MODEL_PATH, referencePath }), 'MODEL_REFERENCE_MISMATCH', MODEL_PATH, '1 of 50 labels');
    }));

  it('refuses a model whose input name differs from the sidecar', () =>
    withTempDir(async (dir) => {
      const modelPath = join(dir, 'm.onnx');
      await copyFile(MODEL_PATH, modelPath);
      const sidecar = JSON.parse(await readFile(SIDECAR_PATH, 'utf8')) as Record<string, unknown>;
      await writeFile(join(dir, 'm.json'), JSON.stringify({ ...sidecar, input_name: 'x' }));
      await rejectsWith(OnnxAdapter.create({ modelPath }), 'MODEL_MISMATCH', modelPath, 'has no input "x"');
    }));
});

describe('model sidecar', () => {
  async function invalidSidecar(patch: Record<string, unknown>, key: string): Promise<void> {
    await withTempDir(async (dir) => {
      const file = join(dir, 'model.json');
      const sidecar = JSON.parse(await readFile(SIDECAR_PATH, 'utf8')) as Record<string, unknown>;
      await writeFile(file, JSON.stringify({ ...sidecar, ...patch }));
      const err = await rejectsWith(loadModelSidecar(file), 'MODEL_SIDECAR_INVALID', `${file}: ${key}: `);
      assert.equal(err.key, key);
      assert.equal(err.file, file);
    });
  }

  it('loads the shipped sidecar', async () => {
    const sidecar = await loadModelSidecar(SIDECAR_PATH);
    assert.deepEqual(sidecar.inputs[4], { name: 'vwap_gap', derive: 'ratio_minus_one', of: ['price', 'vwap'] });
    assert.equal(sidecar.threshold, 0.6);
    assert.match(sidecar.sha256 ?? '', /^[0-9a-f]{64}$/);
  });

  it('names the file and the key of a bad value', async () => {
    await invalidSidecar({ threshold: 1.5 }, 'threshold');
    await invalidSidecar({ version: '' }, 'version');
    await invalidSidecar({ classes: [-1, 0, 0.5] }, 'classes[2]');
    await invalidSidecar({ signal_names: { 2: 'ml_big' } }, 'signal_names.2');
    await invalidSidecar({ inputs: ['returns', { name: 'gap', derive: 'log', of: ['price', 'vwap'] }] }, 'inputs[1].derive');
    await invalidSidecar({ inputs: ['returns', 'returns'] }, 'inputs[1].name');
    await invalidSidecar({ outputs: { label: 'label' } }, 'outputs.probabilities');
  });

  it('names the file of a sidecar that is not JSON', () =>
    withTempDir(async (dir) => {
      const file = join(dir, 'model.json');
      await writeFile(file, '{ version: 1');
      await rejectsWith(loadModelSidecar(file), 'MODEL_SIDECAR_INVALID', file, 'not valid JSON');
    }));
});

describe('CircuitBreaker', () => {
  it('resets the failure count on success and refuses calls during a half-open trial', async () => {
    let nowMs = 0;
    const breaker = new CircuitBreaker({ failureThreshold: 2, cooldownMs: 100, now: () => nowMs });
    const fail = (): Promise<never> => Promise.reject(new Error('boom'));
    await assert.rejects(breaker.execute(fail), /boom/);
    await breaker.execute(() => Promise.resolve(1));
    await assert.rejects(breaker.execute(fail), /boom/);
    assert.equal(breaker.state, 'closed');
    await assert.rejects(breaker.execute(fail), /boom/);
    assert.equal(breaker.state, 'open');
    await assert.rejects(
      breaker.execute(() => Promise.resolve(1)),
      (e: unknown) => e instanceof CircuitOpenError && e.state === 'open',
    );

    nowMs = 100;
    let finishTrial: (value: number) => void = () => undefined;
    const trial = breaker.execute(
      () =>
        new Promise<number>((resolve) => {
          finishTrial = resolve;
        }),
    );
    assert.equal(breaker.state, 'half-open');
    await assert.rejects(
      breaker.execute(() => Promise.resolve(2)),
      (e: unknown) => e instanceof CircuitOpenError && e.state === 'half-open',
    );
    finishTrial(3);
    assert.equal(await trial, 3);
    assert.equal(breaker.state, 'closed');
    assert.equal(breaker.consecutiveFailures, 0);
  });
});
