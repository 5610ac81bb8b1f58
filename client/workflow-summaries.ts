import type { Client } from '@temporalio/client';
import type { SearchAttributePair } from '@temporalio/common';
import type { ProducerInput } from '../activities/types.js';
import { shardOf, shardStream } from '../pipeline/bus/index.js';
import type { StreamingConfig } from '../pipeline/config/index.js';
import { busNames } from '../pipeline/config/index.js';
import { formatCount, formatSpan, intervalLabel, parseDurationMs } from '../pipeline/contracts/index.js';
import type { HistoricalBarSize, HistoricalWhatToShow } from '../pipeline/producers/ibkr/index.js';
import { backfillProvider, defaultBackfillDataset, planIbkrFeed } from '../pipeline/producers/ibkr/index.js';
import type { IbkrBackfillWorkflowInput, MdpLabels, ModelReloadInput, ReplayWorkflowInput, StreamConsumerInput } from '../workflows/index.js';
import { MEMO_SUMMARY, mdpSearchAttributes } from '../workflows/index.js';
import { searchAttributesReady } from './search-attributes.js';

/**
 * What makes a workflow legible in the Web UI and `temporal workflow list/describe`: its search
 * attributes, a one-line static summary and Markdown static details. One builder per kind of
 * workflow, so every path that starts one (the commands, `mdp up`, the schedule) says the same.
 */
export interface Legibility {
  readonly labels: MdpLabels;
  readonly summary: string;
  readonly details?: string;
}

/** Start options of a legible workflow (spread into `client.workflow.start` or a schedule action). */
export interface LegibleStartOptions {
  /** Only when the namespace has mdp's search attributes: a start with unregistered ones is refused. */
  readonly typedSearchAttributes?: SearchAttributePair[];
  readonly staticSummary: string;
  readonly staticDetails?: string;
  /** `memo` plus the summary, which continued runs (which lose the static summary) show in their details. */
  readonly memo: Record<string, unknown>;
}

/** The start options of a workflow described by `legible`, its search attributes set when the namespace has them. */
export async function legibleStart(client: Client, legible: Legibility, memo: Record<string, unknown> = {}): Promise<LegibleStartOptions> {
  const { ready } = await searchAttributesReady(client);
  return {
    ...(ready ? { typedSearchAttributes: mdpSearchAttributes(legible.labels) } : {}),
    staticSummary: legible.summary,
    ...(legible.details === undefined ? {} : { staticDetails: legible.details }),
    memo: { ...memo, [MEMO_SUMMARY]: legible.summary },
  };
}

/** Up to `max` names, then how many more: `SPY, AAPL, MSFT +4`. */
function someOf(names: readonly string[], max = 5): string {
  return names.length <= max ? names.join(', ') : `${names.slice(0, max).join(', ')} +${names.length - max}`;
}

/** `2025-10-01 → 10-02`, `2025-10-01T13:30:00Z → 14:00:00Z`: `to` without what it shares with `from`. */
export function rangeLabel(from: string, to: string): string {
  const date = /^\d{4}-\d{2}-\d{2}$/;
  if (date.test(from) && date.test(to)) return `${from} → ${from.slice(0, 4) === to.slice(0, 4) ? to.slice(5) : to}`;
  if (from.length > 11 && to.length > 11 && from.slice(0, 11) === to.slice(0, 11) && from[10] === 'T') return `${from} → ${to.slice(11)}`;
  return `${from} → ${to}`;
}

/**
 * The symbols of the configured producers that land on `shard` (by the pipeline's own
 * {@link shardOf}): the synthetic producer's, and the IBKR feed's when it is enabled.
 */
export function shardSymbols(config: StreamingConfig, shard: number, shards = config.bus.shards): string[] {
  const pairs: { provider: string; symbol: string }[] = [];
  if (config.producers.synthetic.enabled) {
    for (const symbol of config.producers.synthetic.symbols) pairs.push({ provider: config.producers.synthetic.provider, symbol });
  }
  if (config.producers.ibkr.enabled) {
    const plan = planIbkrFeed(config.producers.ibkr, config.micro_batch);
    for (const feed of plan.feeds) {
      for (const c of plan.lines.granted) pairs.push({ provider: feed === 'trades' ? plan.provider : plan.barsProvider, symbol: c.symbol });
    }
  }
  return [...new Set(pairs.filter((p) => shardOf(p.provider, p.symbol, shards) === shard).map((p) => p.symbol))];
}

/** A shard consumer: `micro-batch · shard 2 · SPY, AAPL · 2 s windows`, `inference · shard 0 · rules`. */
export function consumerLegibility(config: StreamingConfig, input: StreamConsumerInput): Legibility {
  const names = busNames(config);
  const live = 'Live figures (watermark, lag, counts of the run in progress) are in the running activity’s heartbeat.';
  if (input.role === 'inference') {
    const modelPath = input.adapter === 'sklearn' ? (input.modelPath ?? config.inference.adapters.sklearn.model_path) : undefined;
    const stream = input.stream ?? names.features_stream;
    return {
      labels: { role: 'inference', shard: input.shard },
      summary: `inference · shard ${input.shard} · ${input.adapter}${modelPath === undefined ? '' : ` ${modelPath}`}`,
      details: [
        `Evaluates the feature snapshots of \`${shardStream(stream, input.shard)}\` (group \`${input.group ?? names.inference_group}\`) with the ${input.adapter} adapter and writes signals.`,
        live,
      ].join('\n\n'),
    };
  }
  const shards = input.shards ?? config.bus.shards;
  const symbols = shardSymbols(config, input.shard, shards);
  const windowMs = input.windowMs ?? config.micro_batch.window_ms;
  const stream = input.stream ?? names.stream;
  return {
    labels: { role: 'microbatch', shard: input.shard },
    summary: `micro-batch · shard ${input.shard} · ${symbols.length > 0 ? someOf(symbols) : 'no configured symbol'} · ${formatSpan(windowMs)} windows`,
    details: [
      `Owns \`${shardStream(stream, input.shard)}\` (group \`${input.group ?? names.consumer_group}\`): ${formatSpan(windowMs)} event-time windows, ${formatSpan(input.allowLateMs ?? config.micro_batch.allow_late_ms)} late grace, bars upserted to the store.`,
      `Symbols: those of the configured producers that \`shardOf(provider, symbol, ${shards})\` puts on shard ${input.shard}${symbols.length > 0 ? ` (${symbols.join(', ')})` : ''}; file producers and other providers may add others.`,
      live,
    ].join('\n\n'),
  };
}

/** A producer: `producer · synthetic · 3 symbols · 3 ticks/s`, `producer · ibkr · 1 contract · trades`. */
export function producerLegibility(config: StreamingConfig, input: ProducerInput): Legibility {
  if (input.provider === 'ibkr') {
    const ibkr = config.producers.ibkr;
    const plan = planIbkrFeed(ibkr, config.micro_batch);
    const contracts = plan.lines.granted.map((c) => c.symbol);
    return {
      labels: { role: 'producer', provider: ibkr.provider },
      summary: `producer · ${ibkr.provider} · ${contracts.length} contract${contracts.length === 1 ? '' : 's'} · ${ibkr.data}`,
      details: `Interactive Brokers live feed from TWS ${ibkr.host}:${ibkr.port} (client id ${ibkr.client_id}): ${someOf(contracts, 20)}.`,
    };
  }
  const synthetic = config.producers.synthetic;
  const symbols = input.symbols ?? synthetic.symbols;
  const tickRate = input.tickRate ?? synthetic.tick_rate;
  const rate =
    input.count !== undefined
      ? `${formatCount(input.count)} events from ${input.startTs ?? 'the start time'}`
      : input.rate !== undefined
        ? `${formatCount(input.rate)} events/s`
        : `${formatCount(tickRate * symbols.length)} ticks/s`;
  return {
    labels: { role: 'producer', provider: synthetic.provider },
    summary: `producer · ${synthetic.provider} · ${symbols.length} symbol${symbols.length === 1 ? '' : 's'} · ${rate}`,
    details: `Synthetic ticks of ${someOf(symbols, 20)} (seed ${input.seed ?? synthetic.seed}) onto \`${input.stream ?? busNames(config).stream}.*\`, ${input.shards ?? config.bus.shards} shards.`,
  };
}

/** A replay: `replay spy_1day_history 2025-10-01 → 10-02`. */
export function replayLegibility(config: StreamingConfig, input: ReplayWorkflowInput): Legibility {
  return {
    labels: { role: 'replay', dataset: input.dataset },
    summary: `replay ${input.dataset} ${rangeLabel(input.from, input.to)}`,
    details: [
      `Dataset \`${input.dataset}\` of \`${config.replay.datasets_file}\`, from ${input.from} (inclusive) to ${input.to} (exclusive).`,
      `Chunks of ${input.chunkSpan ?? config.replay.chunk_span} event time, ${input.speed ? `${input.speed}× the recorded pace` : 'as fast as possible'}; each chunk’s activity is summarised by its time range in New York time.`,
      `Bars of ${intervalLabel(input.windowMs ?? config.micro_batch.window_ms)}; signals stored as \`replay:<workflow id>\`${input.publishSignals ? ' and published to the live signals stream' : ', not published to the live signals stream'}.`,
    ].join('\n\n'),
  };
}

/** An IBKR backfill: `IBKR backfill SPY 1 min bars 2025-10-01 → 10-03`. */
export function backfillLegibility(config: StreamingConfig, input: IbkrBackfillWorkflowInput): Legibility {
  // Checked by backfillInputFromFlags (and again by the worker); a bad value only makes a bad label here.
  const what = (input.what ?? 'TRADES') as HistoricalWhatToShow;
  const dataset = input.dataset ?? defaultBackfillDataset(input.symbol, input.bar as HistoricalBarSize, what);
  const provider = backfillProvider(config.producers.ibkr.provider, what);
  const barMs = parseDurationMs(input.bar);
  return {
    labels: { role: 'backfill', provider, dataset },
    summary: `IBKR backfill ${input.symbol} ${barMs === undefined ? input.bar : formatSpan(barMs)} bars${what === 'TRADES' ? '' : ` ${what}`} ${rangeLabel(input.from, input.to)}${input.useRth ? ' (RTH)' : ''}`,
    details: [
      `Writes dataset \`${dataset}\` (provider \`${provider}\`), which \`mdp stream replay --dataset ${dataset}\` replays.`,
      'One paced `reqHistoricalData` per chunk, within IB’s limits; a chunk already on disk is not requested again. Each chunk’s activity is summarised by its time range in New York time.',
    ].join('\n\n'),
  };
}

/** A model reload: `model reload → models/signal_model.onnx`. */
export function modelReloadLegibility(input: ModelReloadInput): Legibility {
  return {
    labels: { role: 'model-reload' },
    summary: `model reload → ${input.modelPath}`,
    details: `Validates the model${input.referencePath ? ` against \`${input.referencePath}\`` : ''}, then switches ${
      input.consumers ? `${input.consumers.length} inference consumer${input.consumers.length === 1 ? '' : 's'}` : 'every inference consumer'
    } to it; a consumer that refuses or does not confirm rolls the others back.`,
  };
}

/** The pending-entry sweep the `mdp-recovery` schedule runs: `recovery sweep · every 1m · redis`. */
export function recoveryLegibility(config: StreamingConfig): Legibility {
  return {
    labels: { role: 'recovery' },
    summary: `recovery sweep · every ${config.recovery.interval} · ${config.bus.type}`,
    details:
      config.bus.type === 'kafka'
        ? "Reports each partition's pending records and lag per consumer group (Kafka re-delivers to the owner itself)."
        : `Re-appends a dead consumer's pending entries (idle ≥ ${formatSpan(config.recovery.min_idle_ms)}) for the shard owners; DLQ past ${config.bus.max_deliveries} deliveries.`,
  };
}
