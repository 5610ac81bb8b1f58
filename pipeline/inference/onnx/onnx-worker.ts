// Model worker process: loads one ONNX model and answers WorkerRequests, so inference never
// blocks the pipeline's event loop and a crash in onnxruntime ends only this process. Forked by
// OnnxPool (IPC with advanced serialization); not meant to be imported.
import { InferenceSession, Tensor } from 'onnxruntime-node';
import type { WorkerInit, WorkerReply, WorkerRequest } from './worker-protocol.js';

if (process.send === undefined) throw new Error('onnx-worker must be forked by OnnxPool (it talks over IPC)');
const init = JSON.parse(process.argv[2] ?? '{}') as WorkerInit;
// The pool went away (its process ended or closed the channel): nothing is left to answer.
process.on('disconnect', () => process.exit(0));

function reply(message: WorkerReply): void {
  process.send?.(message);
}

/** Checks the loaded model against what the sidecar promised; returns the input's element type or a reason. */
function checkModel(session: InferenceSession): { inputType: 'float32' | 'float64' } | { problem: string } {
  const input = session.inputMetadata.find((m) => m.name === init.inputName);
  if (input === undefined) return { problem: `has no input "${init.inputName}" (inputs: ${session.inputNames.join(', ')})` };
  if (!input.isTensor || (input.type !== 'float32' && input.type !== 'float64')) {
    return { problem: `input "${init.inputName}" must be a float or double tensor` };
  }
  const width = input.shape.at(-1);
  if (input.shape.length !== 2 || (typeof width === 'number' && width !== init.width)) {
    return { problem: `input "${init.inputName}" has shape [${input.shape.join(', ')}], the sidecar lists ${init.width} inputs` };
  }
  for (const name of [init.labelOutput, init.probabilitiesOutput]) {
    const output = session.outputMetadata.find((m) => m.name === name);
    if (output === undefined) {
      return { problem: `has no output "${name}" (outputs: ${session.outputNames.join(', ')}); export with zipmap disabled` };
    }
    if (!output.isTensor) return { problem: `output "${name}" is not a tensor; export with zipmap disabled` };
  }
  return { inputType: input.type };
}

async function main(): Promise<void> {
  let session: InferenceSession;
  try {
    session = await InferenceSession.create(init.modelPath, {
      executionProviders: ['cpu'],
      intraOpNumThreads: init.intraOpThreads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    });
  } catch (err) {
    reply({ type: 'failed', code: 'MODEL_LOAD', message: `cannot load ONNX model: ${(err as Error).message}` });
    return;
  }
  const check = checkModel(session);
  if ('problem' in check) {
    reply({ type: 'failed', code: 'MODEL_MISMATCH', message: `model ${check.problem}` });
    return;
  }
  const { inputType } = check;

  process.on('message', (request: WorkerRequest) => {
    void run(session, inputType, request);
  });
  reply({ type: 'ready' });
}

async function run(session: InferenceSession, inputType: 'float32' | 'float64', request: WorkerRequest): Promise<void> {
  try {
    const data = inputType === 'float32' ? Float32Array.from(request.rows) : request.rows;
    const feeds = { [init.inputName]: new Tensor(inputType, data, [request.count, init.width]) };
    const out = await session.run(feeds, [init.labelOutput, init.probabilitiesOutput]);
    const labelTensor = out[init.labelOutput],
      probTensor = out[init.probabilitiesOutput];
    if (labelTensor === undefined || probTensor === undefined) throw new Error('model returned no label or probabilities');
    if (labelTensor.type === 'string' || labelTensor.type === 'bool') throw new Error(`labels must be numeric (got ${labelTensor.type})`);
    const rawLabels = labelTensor.data as ArrayLike<number | bigint>;
    const labels = new Float64Array(rawLabels.length);
    for (let i = 0; i < rawLabels.length; i++) labels[i] = Number(rawLabels[i]);
    if (labels.length !== request.count) throw new Error(`model returned ${labels.length} labels for ${request.count} rows`);
    if (probTensor.type !== 'float32' && probTensor.type !== 'float64') throw new Error(`probabilities must be float (got ${probTensor.type})`);
    const probabilities = probTensor.data as Float32Array | Float64Array;
    if (probabilities.length !== request.count * init.classCount) {
      throw new Error(`model returned probabilities of shape [${probTensor.dims.join(', ')}], expected [${request.count}, ${init.classCount}]`);
    }
    // Copies: onnxruntime may own the output buffers.
    const probs = probabilities.slice();
    reply({ type: 'result', id: request.id, labels, probabilities: probs });
  } catch (err) {
    reply({ type: 'error', id: request.id, message: (err as Error).message });
  }
}

void main();
