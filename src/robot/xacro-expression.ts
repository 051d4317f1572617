/**
 * The Python expressions of xacro's `${...}`: the subset robot descriptions use, evaluated with
 * Python's meaning. Numbers, strings, True/False/None, list literals; + - * / // % ** and unary
 * signs; comparisons (chained, as in Python), `in` / `not in`, `and` / `or` / `not`, `x if c else y`;
 * names, attribute access and subscripts (on YAML data from `xacro.load_yaml`), calls of the
 * functions the caller provides. No assignment, lambda or comprehension: those are an error.
 *
 * A recursive-descent parser to closures, called once: `x if c else y`, `and` and `or` evaluate only
 * the operand Python would (descriptions guard a missing key that way).
 */

/** A value an expression can produce. Dicts are YAML mappings; functions are builtins. */
export type XacroValue =
  | number
  | string
  | boolean
  | null
  | XacroValue[]
  | { [key: string]: XacroValue }
  | ((...args: XacroValue[]) => XacroValue);

export class ExpressionError extends Error {
  override name = "ExpressionError";
}

type Token =
  | { kind: "number"; value: number }
  | { kind: "string"; value: string }
  | { kind: "name"; value: string }
  | { kind: "op"; value: string }
  | { kind: "end" };

const OPERATORS = [
  "**",
  "//",
  "==",
  "!=",
  "<=",
  ">=",
  "+",
  "-",
  "*",
  "/",
  "%",
  "<",
  ">",
  "(",
  ")",
  "[",
  "]",
  ",",
  ".",
  ":",
];

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const number = /^(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?/.exec(text.slice(i));
    if (number !== null) {
      tokens.push({ kind: "number", value: Number(number[0]) });
      i += number[0].length;
      continue;
    }
    if (c === "'" || c === '"') {
      const end = text.indexOf(c, i + 1);
      if (end < 0) throw new ExpressionError(`unterminated string starting at ${text.slice(i, i + 20)}`);
      tokens.push({ kind: "string", value: text.slice(i + 1, end) });
      i = end + 1;
      continue;
    }
    const name = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i));
    if (name !== null) {
      tokens.push({ kind: "name", value: name[0] });
      i += name[0].length;
      continue;
    }
    const op = OPERATORS.find((o) => text.startsWith(o, i));
    if (op === undefined) throw new ExpressionError(`unexpected character "${c}"`);
    tokens.push({ kind: "op", value: op });
    i += op.length;
  }
  tokens.push({ kind: "end" });
  return tokens;
}

/** Python's truth value. */
export function truthy(v: XacroValue): boolean {
  if (Array.isArray(v)) return v.length > 0;
  if (v !== null && typeof v === "object") return Object.keys(v).length > 0;
  return Boolean(v);
}

/** Python's str() of a value, as xacro writes it into text. */
export function pythonStr(v: XacroValue): string {
  if (v === true) return "True";
  if (v === false) return "False";
  if (v === null) return "None";
  if (typeof v === "number") return Number.isFinite(v) ? String(v) : v > 0 ? "inf" : v < 0 ? "-inf" : "nan";
  if (typeof v === "string") return v;
  if (Array.isArray(v))
    return `[${v.map((x) => (typeof x === "string" ? `'${x}'` : pythonStr(x))).join(", ")}]`;
  if (typeof v === "function") return "<function>";
  return `{${Object.entries(v)
    .map(([k, x]) => `'${k}': ${typeof x === "string" ? `'${x}'` : pythonStr(x)}`)
    .join(", ")}}`;
}

function typeName(v: XacroValue): string {
  if (v === null) return "None";
  if (Array.isArray(v)) return "list";
  if (typeof v === "object") return "dict";
  return typeof v === "number" ? "number" : typeof v;
}

function asNumber(v: XacroValue, op: string): number {
  if (typeof v === "number") return v;
  if (typeof v === "boolean") return v ? 1 : 0;
  throw new ExpressionError(`"${op}" needs numbers, got ${typeName(v)} ${JSON.stringify(pythonStr(v))}`);
}

function binary(op: string, a: XacroValue, b: XacroValue): XacroValue {
  if (op === "+" && typeof a === "string" && typeof b === "string") return a + b;
  if (op === "+" && Array.isArray(a) && Array.isArray(b)) return [...a, ...b];
  const x = asNumber(a, op);
  const y = asNumber(b, op);
  switch (op) {
    case "+":
      return x + y;
    case "-":
      return x - y;
    case "*":
      return x * y;
    case "/":
      if (y === 0) throw new ExpressionError("division by zero");
      return x / y;
    case "//":
      if (y === 0) throw new ExpressionError("division by zero");
      return Math.floor(x / y);
    case "%":
      if (y === 0) throw new ExpressionError("division by zero");
      return x - y * Math.floor(x / y);
    case "**":
      return x ** y;
  }
  throw new ExpressionError(`unknown operator ${op}`);
}

function equal(a: XacroValue, b: XacroValue): boolean {
  if (typeof a === "boolean" || typeof b === "boolean") {
    if (
      (typeof a === "number" || typeof a === "boolean") &&
      (typeof b === "number" || typeof b === "boolean")
    )
      return Number(a) === Number(b);
  }
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => equal(x, b[i]));
  return a === b;
}

function contains(container: XacroValue, item: XacroValue): boolean {
  if (typeof container === "string") {
    if (typeof item !== "string") throw new ExpressionError("'in <string>' needs a string on the left");
    return container.includes(item);
  }
  if (Array.isArray(container)) return container.some((x) => equal(x, item));
  if (container !== null && typeof container === "object" && typeof container !== "function")
    return Object.hasOwn(container, String(item));
  throw new ExpressionError(`"in" needs a string, list or dict on the right, got ${typeName(container)}`);
}

function compare(op: string, a: XacroValue, b: XacroValue): boolean {
  switch (op) {
    case "==":
      return equal(a, b);
    case "!=":
      return !equal(a, b);
    case "in":
      return contains(b, a);
    case "not in":
      return !contains(b, a);
  }
  const [x, y] = typeof a === "string" && typeof b === "string" ? [a, b] : [asNumber(a, op), asNumber(b, op)];
  switch (op) {
    case "<":
      return x < y;
    case "<=":
      return x <= y;
    case ">":
      return x > y;
    case ">=":
      return x >= y;
  }
  throw new ExpressionError(`unknown comparison ${op}`);
}

function member(object: XacroValue, key: XacroValue, text: string): XacroValue {
  if (Array.isArray(object)) {
    const i = asNumber(key, "[]");
    const index = i < 0 ? object.length + i : i;
    if (!Number.isInteger(index) || index < 0 || index >= object.length)
      throw new ExpressionError(`${text}: index ${i} is out of range (length ${object.length})`);
    return object[index];
  }
  if (typeof object === "string" && typeof key === "number") {
    const index = key < 0 ? object.length + key : key;
    if (index < 0 || index >= object.length)
      throw new ExpressionError(`${text}: index ${key} is out of range`);
    return object[index];
  }
  if (object !== null && typeof object === "object") {
    const k = String(key);
    if (!Object.hasOwn(object, k))
      throw new ExpressionError(
        `${text}: no key "${k}" (has: ${Object.keys(object).slice(0, 8).join(", ") || "nothing"})`,
      );
    return object[k];
  }
  throw new ExpressionError(`${text}: a ${typeName(object)} has no member "${pythonStr(key)}"`);
}

const COMPARISONS = new Set(["==", "!=", "<", "<=", ">", ">="]);

/** A parsed expression: evaluated only when called (the branch not taken is never evaluated). */
type Thunk = () => XacroValue;

class Parser {
  private i = 0;
  constructor(
    private readonly tokens: Token[],
    private readonly lookup: (name: string) => XacroValue,
  ) {}

  private peek(): Token {
    return this.tokens[this.i];
  }
  private isOp(value: string): boolean {
    const t = this.peek();
    return t.kind === "op" && t.value === value;
  }
  private isName(value: string): boolean {
    const t = this.peek();
    return t.kind === "name" && t.value === value;
  }
  private expectOp(value: string): void {
    if (!this.isOp(value)) throw new ExpressionError(`expected "${value}" ${this.where()}`);
    this.i++;
  }
  private where(): string {
    const t = this.peek();
    return t.kind === "end" ? "at the end" : `before "${"value" in t ? t.value : ""}"`;
  }

  parseAll(): Thunk {
    const v = this.ternary();
    if (this.peek().kind !== "end")
      throw new ExpressionError(`unexpected ${this.where().replace("before ", "")}`);
    return v;
  }

  private ternary(): Thunk {
    const value = this.or();
    if (!this.isName("if")) return value;
    this.i++;
    const condition = this.or();
    if (!this.isName("else")) throw new ExpressionError(`expected "else" ${this.where()}`);
    this.i++;
    const otherwise = this.ternary();
    return () => (truthy(condition()) ? value() : otherwise());
  }
  private or(): Thunk {
    let v = this.and();
    while (this.isName("or")) {
      this.i++;
      const [left, right] = [v, this.and()];
      v = () => {
        const x = left();
        return truthy(x) ? x : right();
      };
    }
    return v;
  }
  private and(): Thunk {
    let v = this.not();
    while (this.isName("and")) {
      this.i++;
      const [left, right] = [v, this.not()];
      v = () => {
        const x = left();
        return truthy(x) ? right() : x;
      };
    }
    return v;
  }
  private not(): Thunk {
    if (this.isName("not")) {
      this.i++;
      const inner = this.not();
      return () => !truthy(inner());
    }
    return this.comparison();
  }
  /** Chained, as in Python: a < b < c is a < b and b < c. */
  private comparison(): Thunk {
    const operands: Thunk[] = [this.arith()];
    const ops: string[] = [];
    for (;;) {
      const t = this.peek();
      let op: string | undefined;
      if (t.kind === "op" && COMPARISONS.has(t.value)) op = t.value;
      else if (this.isName("in")) op = "in";
      else if (this.isName("not")) {
        const next = this.tokens[this.i + 1];
        if (next?.kind === "name" && next.value === "in") {
          op = "not in";
          this.i++;
        }
      }
      if (op === undefined) break;
      this.i++;
      ops.push(op);
      operands.push(this.arith());
    }
    if (ops.length === 0) return operands[0];
    return () => {
      let left = operands[0]();
      for (let k = 0; k < ops.length; k++) {
        const right = operands[k + 1]();
        if (!compare(ops[k], left, right)) return false;
        left = right;
      }
      return true;
    };
  }
  private binaryChain(next: () => Thunk, operators: string[]): Thunk {
    let v = next();
    for (;;) {
      const op = operators.find((o) => this.isOp(o));
      if (op === undefined) return v;
      this.i++;
      const [left, right] = [v, next()];
      v = () => binary(op, left(), right());
    }
  }
  private arith(): Thunk {
    return this.binaryChain(() => this.term(), ["+", "-"]);
  }
  private term(): Thunk {
    return this.binaryChain(() => this.unary(), ["*", "/", "//", "%"]);
  }
  private unary(): Thunk {
    if (this.isOp("-") || this.isOp("+")) {
      const sign = this.isOp("-") ? -1 : 1;
      this.i++;
      const inner = this.unary();
      return () => sign * asNumber(inner(), sign < 0 ? "-" : "+");
    }
    return this.power();
  }
  private power(): Thunk {
    const base = this.postfix();
    if (!this.isOp("**")) return base;
    this.i++;
    const exponent = this.unary();
    return () => binary("**", base(), exponent());
  }
  private postfix(): Thunk {
    let [v, text] = this.atom();
    for (;;) {
      const object = v;
      const where = text;
      if (this.isOp(".")) {
        this.i++;
        const t = this.peek();
        if (t.kind !== "name") throw new ExpressionError(`expected a name after "." ${this.where()}`);
        this.i++;
        v = () => member(object(), t.value, where);
        text = `${text}.${t.value}`;
      } else if (this.isOp("[")) {
        this.i++;
        const key = this.ternary();
        this.expectOp("]");
        v = () => member(object(), key(), where);
        text = `${text}[...]`;
      } else if (this.isOp("(")) {
        this.i++;
        const args: Thunk[] = [];
        while (!this.isOp(")")) {
          args.push(this.ternary());
          if (!this.isOp(")")) this.expectOp(",");
        }
        this.i++;
        v = () => {
          const f = object();
          if (typeof f !== "function") throw new ExpressionError(`${where} is not a function`);
          return f(...args.map((a) => a()));
        };
        text = `${text}(...)`;
      } else {
        return v;
      }
    }
  }
  private atom(): [Thunk, string] {
    const t = this.tokens[this.i++];
    switch (t.kind) {
      case "number":
      case "string": {
        const value = t.value;
        return [() => value, String(value)];
      }
      case "name": {
        const name = t.value;
        if (name === "True") return [() => true, name];
        if (name === "False") return [() => false, name];
        if (name === "None") return [() => null, name];
        if (["lambda", "for", "import", "def", "class", "if", "else"].includes(name))
          throw new ExpressionError(`"${name}" is not supported in xacro expressions here`);
        return [() => this.lookup(name), name];
      }
      case "op":
        if (t.value === "(") {
          const v = this.ternary();
          this.expectOp(")");
          return [v, "(...)"];
        }
        if (t.value === "[") {
          const items: Thunk[] = [];
          while (!this.isOp("]")) {
            items.push(this.ternary());
            if (!this.isOp("]")) this.expectOp(",");
          }
          this.i++;
          return [() => items.map((item) => item()), "[...]"];
        }
        throw new ExpressionError(`unexpected "${t.value}"`);
      case "end":
        throw new ExpressionError("unexpected end of expression");
    }
  }
}

/** Evaluates one expression; names are resolved by `lookup` (which throws for an unknown name). */
export function evaluateExpression(text: string, lookup: (name: string) => XacroValue): XacroValue {
  return new Parser(tokenize(text), lookup).parseAll()();
}
