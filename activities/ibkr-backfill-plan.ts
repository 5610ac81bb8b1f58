import { readdir } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import type { IbkrProducerConfig } from '../pipeline/config/index.js';
import {
  backfillChunk,
  backfillChunkCount,
  backfillChunkFile,
  backfillRange,
  claimBackfillDir,
  DatasetCatalogError,
  registerBackfillDataset,
} from '../pipeline/datasets/index.js';
import { BackfillInputError, backfillProvider, HISTORICAL_BAR_SIZES, parseBackfillRequest } from '../pipeline/producers/ibkr/index.js';
import type { IbkrBackfillDeps } from './ibkr-backfill-activity.js';
import type { IbkrBackfillContract, IbkrBackfillInput, IbkrBackfillPlan } from './ibkr-backfill-types.js';

// The plan of an IBKR backfill: the checked request, its contract and dataset, the chunks on disk.

/** The configured contract of `symbol`, or a US stock on SMART when `producers.ibkr.contracts` does not list it. */
function contractFor(config: IbkrProducerConfig, symbol: string): IbkrBackfillContract {
  const found = config.contracts.find((c) => c.symbol === symbol) ?? config.contracts.find((c) => c.symbol.toUpperCase() === symbol.toUpperCase());
  if (!found) return { symbol, secType: 'STK', exchange: 'SMART', currency: 'USD', defaulted: true };
  return {
    symbol: found.symbol,
    secType: found.sec_type,
    exchange: found.exchange,
    currency: found.currency,
    ...(found.primary_exchange ? { primaryExch: found.primary_exchange } : {}),
    defaulted: false,
  };
}

export function describeContract(c: IbkrBackfillContract): string {
  return `${c.symbol} ${c.secType} ${c.exchange}${c.primaryExch ? `/${c.primaryExch}` : ''} ${c.currency}`;
}

/**
 * Checks the request, resolves the contract and the dataset (registering it in the datasets file
 * when new) and counts the chunks already on disk. Bad input fails for good, naming the field.
 */
export async function planIbkrBackfill(deps: IbkrBackfillDeps, input: IbkrBackfillInput): Promise<IbkrBackfillPlan> {
  const d = deps.ibkrBackfill;
  let request;
  try {
    request = parseBackfillRequest(input, { style: 'field', nowMs: Date.now() });
  } catch (err) {
    if (err instanceof BackfillInputError) throw ApplicationFailure.nonRetryable(err.message, err.name);
    throw err;
  }
  const contract = contractFor(d.ibkr, request.symbol);
  const provider = backfillProvider(d.ibkr.provider, request.what);
  const range = backfillRange(request.fromMs, request.toMs, HISTORICAL_BAR_SIZES[request.bar].seconds * 1000, request.chunkSeconds * 1000);
  let registered;
  try {
    registered = await registerBackfillDataset(d.datasetsFile, {
      name: request.dataset,
      // backfill_dir is the worker's (relative to its working directory); the catalog holds it relative to itself.
      defaultDir: resolve(d.backfillDir, request.dataset),
      provider,
      description: `IBKR ${request.bar} ${request.what} bars (mdp dataset fetch ibkr)`,
    });
    await claimBackfillDir(registered.dir, request.dataset, { source: 'ibkr', bar: request.bar, what: request.what, provider });
  } catch (err) {
    if (err instanceof DatasetCatalogError) throw ApplicationFailure.nonRetryable(err.message, err.name);
    throw err;
  }
  const chunksTotal = backfillChunkCount(range);
  const present = new Set(await readdir(registered.dir));
  let chunksPresent = 0;
  for (let i = 0; i < chunksTotal; i++) {
    if (present.has(basename(backfillChunkFile(registered.dir, request.symbol, request, backfillChunk(range, i))))) chunksPresent++;
  }
  const plan: IbkrBackfillPlan = {
    symbol: request.symbol,
    bar: request.bar,
    what: request.what,
    useRth: request.useRth,
    contract,
    provider,
    dataset: request.dataset,
    datasetDir: registered.dir,
    datasetAdded: registered.added,
    datasetsFile: d.datasetsFile,
    ...range,
    chunksTotal,
    chunksPresent,
  };
  deps.log.info('ibkr backfill planned', {
    contract: describeContract(contract),
    bar: plan.bar,
    what: plan.what,
    dataset: plan.dataset,
    dir: plan.datasetDir,
    registered: plan.datasetAdded,
    chunksTotal,
    chunksPresent,
  });
  return plan;
}
