import { parse } from '@bufbuild/cel';

/** A parsed CEL condition (the `ParsedExpr` of `@bufbuild/cel`). */
export type ParsedCondition = ReturnType<typeof parse>;
type Expr = ParsedCondition['expr'];
type Call = Extract<Expr['exprKind'], { case: 'callExpr' }>['value'];

/** The CEL types a rule condition may compute with; every feature is a `double`. */
type ValueType = 'double' | 'int' | 'uint' | 'bool';

/** A condition that passed the check, with the features it reads in order of first appearance. */
export interface CheckedCondition {
  readonly ok: true;
  readonly parsed: ParsedCondition;
  readonly variables: readonly string[];
}

/** Why a condition was refused, and where: `offset` is 0-based within the condition text. */
export interface ConditionProblem {
  readonly ok: false;
  readonly kind: 'syntax' | 'unknown-variable' | 'type';
  readonly reason: string;
  readonly offset: number;
  /** The unknown identifier, for `unknown-variable`. */
  readonly variable?: string;
}

const COMPARISONS = new Set(['_<_', '_<=_', '_>_', '_>=_']);
const EQUALITIES = new Set(['_==_', '_!=_']);
const ARITHMETIC = new Set(['_+_', '_-_', '_*_', '_/_']);
const LOGICAL = new Set(['_&&_', '_||_']);

/** Thrown inside the walk and turned into a `ConditionProblem` by `checkCondition`; never escapes it. */
class Refusal extends Error {
  constructor(
    readonly kind: 'unknown-variable' | 'type',
    readonly reason: string,
    readonly offset: number,
    readonly variable?: string,
  ) {
    super(reason);
    this.name = this.constructor.name;
  }
}

/**
 * Parses a rule condition and checks it statically, so a bad rule is refused when the rules file
 * loads rather than failing on every snapshot. The accepted language is a small, side-effect-free
 * subset of CEL: feature variables (all `double`), numeric and boolean literals, `! - && || ?:`,
 * comparisons, `+ - * / %` and the `double()`/`int()` conversions. Every identifier must be a known
 * feature, so names such as `process` or `constructor` never reach the evaluator, and there are no
 * member calls, field selections, macros, strings, lists or maps.
 *
 * Arithmetic needs one numeric type on both sides, as in CEL (`momentum * 100.0`, not
 * `momentum * 100`); comparisons may mix them (`rsi > 70`).
 */
export function checkCondition(condition: string, knownFeatures: ReadonlySet<string>): CheckedCondition | ConditionProblem {
  let parsed: ParsedCondition;
  try {
    parsed = parse(condition);
  } catch (error) {
    return syntaxProblem(error);
  }
  const positions = parsed.sourceInfo?.positions ?? {};
  const firstSeen = new Map<string, number>();
  const offsetOf = (node: Expr): number => positions[String(node.id)] ?? 0;

  const walk = (node: Expr): ValueType => {
    const kind = node.exprKind;
    switch (kind.case) {
      case 'identExpr': {
        const name = kind.value.name;
        if (!knownFeatures.has(name)) {
          throw new Refusal('unknown-variable', `unknown variable "${name}"`, offsetOf(node), name);
        }
        const offset = offsetOf(node);
        const seen = firstSeen.get(name);
        if (seen === undefined || offset < seen) firstSeen.set(name, offset);
        return 'double';
      }
      case 'constExpr': {
        const constant = kind.value.constantKind;
        switch (constant.case) {
          case 'doubleValue':
            return 'double';
          case 'int64Value':
            return 'int';
          case 'uint64Value':
            return 'uint';
          case 'boolValue':
            return 'bool';
          default:
            throw new Refusal('type', `${literalName(constant.case)} literals are not supported`, offsetOf(node));
        }
      }
      case 'callExpr':
        return checkCall(kind.value, node);
      case 'selectExpr': {
        const select = kind.value;
        if (select.operand) walk(select.operand);
        const what = select.testOnly ? 'the has() macro' : `field selection ".${select.field}"`;
        throw new Refusal('type', `${what} is not supported (features are plain numbers)`, offsetOf(node));
      }
      case 'listExpr':
        throw new Refusal('type', 'lists are not supported', offsetOf(node));
      case 'structExpr':
        throw new Refusal('type', 'maps and messages are not supported', offsetOf(node));
      case 'comprehensionExpr':
        throw new Refusal('type', 'macros (all, exists, map, filter, …) are not supported', offsetOf(node));
      default:
        throw new Refusal('type', 'empty expression', offsetOf(node));
    }
  };

  const checkCall = (call: Call, node: Expr): ValueType => {
    // Operands first, left to right, so the first unknown identifier in the text is the one reported.
    if (call.target) walk(call.target);
    const types = call.args.map(walk);
    if (call.target) {
      throw new Refusal('type', `method calls are not supported (".${call.function}()")`, offsetOf(node));
    }
    const fn = call.function;
    const op = operatorLabel(fn);
    const [a, b, c] = types;
    const argAt = (i: number): number => {
      const arg = call.args[i];
      return arg ? offsetOf(arg) : offsetOf(node);
    };
    if (LOGICAL.has(fn)) {
      types.forEach((t, i) => {
        if (t !== 'bool') throw new Refusal('type', `operator "${op}" needs bool operands, got ${t}`, argAt(i));
      });
      return 'bool';
    }
    if (fn === '!_') {
      if (a !== 'bool') throw new Refusal('type', `operator "!" needs a bool operand, got ${String(a)}`, argAt(0));
      return 'bool';
    }
    if (fn === '-_') {
      if (a !== 'double' && a !== 'int') throw new Refusal('type', `negation needs a double or int operand, got ${String(a)}`, argAt(0));
      return a;
    }
    if (COMPARISONS.has(fn)) {
      types.forEach((t, i) => {
        if (!isNumeric(t)) throw new Refusal('type', `operator "${op}" needs numeric operands, got ${t}`, argAt(i));
      });
      return 'bool';
    }
    if (EQUALITIES.has(fn)) {
      if (a === undefined || b === undefined || isNumeric(a) !== isNumeric(b)) {
        throw new Refusal('type', `operator "${op}" compares two numbers or two bools, got ${String(a)} and ${String(b)}`, argAt(1));
      }
      return 'bool';
    }
    if (ARITHMETIC.has(fn) || fn === '_%_') {
      if (a === undefined || b === undefined || !isNumeric(a) || a !== b) {
        const hint = (a === 'double' && b === 'int') || (a === 'int' && b === 'double') ? ' (write a double literal such as 100.0)' : '';
        throw new Refusal('type', `operator "${op}" needs operands of one numeric type, got ${String(a)} and ${String(b)}${hint}`, argAt(1));
      }
      if (fn === '_%_' && a === 'double') throw new Refusal('type', 'operator "%" needs int operands, got double', argAt(0));
      return a;
    }
    if (fn === '_?_:_') {
      if (a !== 'bool') throw new Refusal('type', `the condition of "?:" must be bool, got ${String(a)}`, argAt(0));
      if (b === undefined || b !== c) throw new Refusal('type', `both branches of "?:" must have one type, got ${String(b)} and ${String(c)}`, argAt(2));
      return b;
    }
    if ((fn === 'double' || fn === 'int') && types.length === 1) {
      if (!isNumeric(a)) throw new Refusal('type', `${fn}() needs a numeric argument, got ${String(a)}`, argAt(0));
      return fn;
    }
    throw new Refusal('type', `unsupported function "${fn}"`, offsetOf(node));
  };

  try {
    const result = walk(parsed.expr);
    if (result !== 'bool') {
      return { ok: false, kind: 'type', reason: `a condition must be a bool expression, got ${result}`, offset: 0 };
    }
  } catch (error) {
    if (!(error instanceof Refusal)) throw error;
    return error.variable === undefined
      ? { ok: false, kind: error.kind, reason: error.reason, offset: error.offset }
      : { ok: false, kind: error.kind, reason: error.reason, offset: error.offset, variable: error.variable };
  }
  const variables = [...firstSeen.entries()].sort((x, y) => x[1] - y[1]).map(([name]) => name);
  return { ok: true, parsed, variables };
}

function isNumeric(type: ValueType | undefined): boolean {
  return type === 'double' || type === 'int' || type === 'uint';
}

function operatorLabel(fn: string): string {
  if (fn === '_?_:_') return '?:';
  return fn.replace(/^_|_$/g, '');
}

function literalName(kind: string | undefined): string {
  switch (kind) {
    case 'stringValue':
      return 'string';
    case 'bytesValue':
      return 'bytes';
    case 'nullValue':
      return 'null';
    default:
      return kind ?? 'empty';
  }
}

/** Turns the parser's exception (a peggy syntax error with `location` and `rawMessage`) into a problem. */
function syntaxProblem(error: unknown): ConditionProblem {
  let offset = 0;
  let reason = error instanceof Error ? error.message : String(error);
  if (typeof error === 'object' && error !== null) {
    const { location, rawMessage } = error as { location?: { start?: { offset?: unknown } }; rawMessage?: unknown };
    if (typeof location?.start?.offset === 'number') offset = location.start.offset;
    if (typeof rawMessage === 'string') reason = rawMessage;
  }
  return { ok: false, kind: 'syntax', reason, offset };
}
