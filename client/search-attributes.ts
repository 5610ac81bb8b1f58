import type { Client } from '@temporalio/client';
import { SearchAttributeType, TypedSearchAttributes } from '@temporalio/common';
import { encodeSearchAttributeIndexedValueType } from '@temporalio/common/lib/search-attributes.js';
import { MDP_SEARCH_ATTRIBUTES } from '../workflows/index.js';
import type { SearchAttributeConflict } from './search-attribute-error.js';
import { SearchAttributeError } from './search-attribute-error.js';

/** What {@link ensureSearchAttributes} found and did in a namespace. */
export interface SearchAttributesRegistration {
  readonly namespace: string;
  /** Names added now. */
  readonly added: readonly string[];
  /** Names that were there already, with the right type. */
  readonly present: readonly string[];
}

type IndexedValueType = NonNullable<ReturnType<typeof encodeSearchAttributeIndexedValueType>>;

/** `Keyword`, `Int`, … of a type as the operator API returns it (a number, or a name). */
function typeName(type: IndexedValueType | string | number): string {
  const known = Object.values(SearchAttributeType).find(
    (t) => encodeSearchAttributeIndexedValueType(t) === encodeSearchAttributeIndexedValueType(type as IndexedValueType),
  );
  return known ? TypedSearchAttributes.toMetadataType(known) : String(type);
}

/**
 * Registers mdp's custom search attributes ({@link MDP_SEARCH_ATTRIBUTES}) in `namespace`, adding
 * only the missing ones (`temporal operator search-attribute create`, through the operator API).
 * Safe to call on every start: a second call adds nothing.
 *
 * @throws SearchAttributeError `type_conflict` naming each attribute that exists with another
 *   type, or `registration_failed` when the server refuses (e.g. no permission).
 *
 * @example
 * const { added } = await ensureSearchAttributes(client, 'default'); // ['MdpRole', 'MdpShard', …] the first time, [] after
 */
export async function ensureSearchAttributes(client: Client, namespace: string = client.options.namespace): Promise<SearchAttributesRegistration> {
  const operator = client.connection.operatorService;
  const check = async () => {
    const listed = await operator.listSearchAttributes({ namespace });
    const existing = new Map<string, IndexedValueType>([...Object.entries(listed.systemAttributes ?? {}), ...Object.entries(listed.customAttributes ?? {})]);
    const conflicts: SearchAttributeConflict[] = [];
    const present: string[] = [];
    const missing: string[] = [];
    for (const key of MDP_SEARCH_ATTRIBUTES) {
      const type = existing.get(key.name);
      if (type === undefined) missing.push(key.name);
      else if (encodeSearchAttributeIndexedValueType(type) !== encodeSearchAttributeIndexedValueType(key.type))
        conflicts.push({ name: key.name, existing: typeName(type), wanted: TypedSearchAttributes.toMetadataType(key.type) });
      else present.push(key.name);
    }
    if (conflicts.length > 0) {
      const which = conflicts.map((c) => `${c.name} is ${c.existing}, mdp needs ${c.wanted}`).join('; ');
      throw new SearchAttributeError('type_conflict', `search attributes of namespace ${namespace} conflict with mdp's: ${which}`, conflicts);
    }
    return { present, missing };
  };
  const before = await check();
  if (before.missing.length === 0) return { namespace, added: [], present: before.present };
  const wanted = MDP_SEARCH_ATTRIBUTES.filter((key) => before.missing.includes(key.name));
  try {
    await operator.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(wanted.map((key) => [key.name, encodeSearchAttributeIndexedValueType(key.type)!])),
    });
  } catch (err) {
    // Another process may have added them meanwhile: what counts is whether they are there now.
    const after = await check();
    if (after.missing.length > 0)
      throw new SearchAttributeError(
        'registration_failed',
        `cannot add search attributes ${after.missing.join(', ')} to namespace ${namespace}: ${(err as Error).message}`,
        [],
        {
          cause: err,
        },
      );
  }
  return { namespace, added: before.missing, present: before.present };
}

/** Whether workflows started through a client may carry mdp's search attributes. */
export interface SearchAttributesReadiness {
  readonly ready: boolean;
  /** Names this process added. */
  readonly added: readonly string[];
  /** Why they are not usable (`ready` false). */
  readonly problem?: string;
}

const readiness = new WeakMap<Client, Promise<SearchAttributesReadiness>>();

/**
 * {@link ensureSearchAttributes} once per client (the first caller's `warn` is used): a workflow
 * started with an unregistered attribute is refused, so when they cannot be registered mdp starts
 * its workflows without them, and says so once.
 */
export function searchAttributesReady(
  client: Client,
  warn: (message: string) => void = (message) => process.stderr.write(`warning: ${message}\n`),
): Promise<SearchAttributesReadiness> {
  let ready = readiness.get(client);
  if (ready === undefined) {
    ready = ensureSearchAttributes(client).then(
      (registration): SearchAttributesReadiness => ({ ready: true, added: registration.added }),
      (err: unknown): SearchAttributesReadiness => {
        const problem = (err as Error).message;
        warn(`${problem}; workflows start without search attributes (MdpRole, …), so Web UI and CLI queries on them will not find them`);
        return { ready: false, added: [], problem };
      },
    );
    readiness.set(client, ready);
  }
  return ready;
}
