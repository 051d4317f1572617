/**
 * xacro → URDF text, as ROS 2's xacro expands it (in order, `xacro:` prefix required): properties
 * (values and blocks, scope local / parent / global), macros (parameters with `:=` defaults, `^`
 * to take the caller's value, `*block` and `**blocks`), `insert_block`, `if` / `unless`, `include`,
 * `arg`, `call`, `${...}` Python expressions (src/robot/xacro-expression.ts) and the substitution
 * args `$(arg)`, `$(find pkg)`, `$(env)`, `$(optenv)`, `$(dirname)`. Of xacro's Python helpers:
 * `xacro.load_yaml` (with the `!radians` / `!degrees` tags), `xacro.warning`, `xacro.error`,
 * `xacro.message`, the `math` module's functions and Python's `abs min max int float str len round`.
 *
 * Why our own and not the npm `xacro-parser`: it runs asynchronously on a browser DOM, and its
 * expression handling turns any structured property into the text "[object Object]", so a
 * description that reads its parameters with `xacro.load_yaml` (franka_description's fr3/fer/fp3)
 * cannot be expanded with it. This expander is synchronous (the model loads where a URDF does),
 * and its errors are one line naming the file and the construct.
 *
 * `$(find pkg)` and `package://pkg/...` (in an include or a load_yaml file name; a mesh URI is left
 * as written, meshes play no part in the dynamics) are looked up in `packagePaths`, then in
 * AMENT_PREFIX_PATH (prefix/share/pkg) and ROS_PACKAGE_PATH; this project is the package `mbpo_arm`.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import { XMLParser, XMLValidator } from "fast-xml-parser";
import { parse as parseYaml } from "yaml";
import { packageRoot } from "../util/paths.js";
import {
  ExpressionError,
  evaluateExpression,
  pythonStr,
  truthy,
  type XacroValue,
} from "./xacro-expression.js";

export class XacroError extends Error {
  override name = "XacroError";
}

export interface XacroOptions {
  /** Values of the description's `xacro:arg`s (name → value), as `ros2 run xacro xacro f name:=value`. */
  args?: Readonly<Record<string, string | number | boolean>>;
  /** Directories searched first for `$(find pkg)`: a package, or a folder holding packages. */
  packagePaths?: readonly string[];
  /** Environment for `$(env)`, `$(optenv)` and the package search; default process.env. */
  env?: Readonly<Record<string, string | undefined>>;
}

export interface XacroResult {
  /** The expanded URDF. */
  xml: string;
  /** `xacro.warning(...)` and `xacro.message(...)` output, in order. */
  warnings: string[];
}

/** Is this path a xacro file (by its name: `.xacro`, `.urdf.xacro`)? */
export function isXacroPath(path: string): boolean {
  return path.endsWith(".xacro");
}

// ---------------------------------------------------------------------------------------------
// The document, as fast-xml-parser's ordered form reads it, turned into plain nodes.

type XmlNode =
  | { kind: "element"; tag: string; attributes: [string, string][]; children: XmlNode[] }
  | { kind: "text"; text: string }
  | { kind: "comment"; text: string };
type Element = Extract<XmlNode, { kind: "element" }>;

const ORDERED = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: "",
  commentPropName: "#comment",
  trimValues: false,
  parseTagValue: false,
  parseAttributeValue: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
});

function toNodes(ordered: unknown[]): XmlNode[] {
  const nodes: XmlNode[] = [];
  for (const entry of ordered as Record<string, unknown>[]) {
    if ("#text" in entry) {
      nodes.push({ kind: "text", text: String(entry["#text"]) });
      continue;
    }
    const tag = Object.keys(entry).find((k) => k !== ":@");
    if (tag === undefined) continue;
    const body = entry[tag] as unknown[];
    if (tag === "#comment") {
      nodes.push({
        kind: "comment",
        text: body.map((t) => String((t as Record<string, unknown>)["#text"])).join(""),
      });
      continue;
    }
    const attrs = (entry[":@"] ?? {}) as Record<string, unknown>;
    nodes.push({
      kind: "element",
      tag,
      attributes: Object.entries(attrs).map(([k, v]) => [k, String(v)]),
      children: toNodes(body),
    });
  }
  return nodes;
}

function readDocument(path: string, from: string | undefined): Element {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new XacroError(`${from ?? path}: cannot read ${from === undefined ? "the file" : path} (${why})`);
  }
  const valid = XMLValidator.validate(text);
  if (valid !== true)
    throw new XacroError(`${path}: not well-formed XML: ${valid.err.msg} (line ${valid.err.line})`);
  const roots = toNodes(ORDERED.parse(text) as unknown[]).filter((n): n is Element => n.kind === "element");
  if (roots.length !== 1) throw new XacroError(`${path}: expected one root element, found ${roots.length}`);
  return roots[0];
}

function attribute(el: Element, name: string): string | undefined {
  return el.attributes.find(([k]) => k === name)?.[1];
}

function describe(el: Element): string {
  const name = attribute(el, "name") ?? attribute(el, "filename") ?? attribute(el, "value");
  return name === undefined
    ? `<${el.tag}>`
    : `<${el.tag} ${el.tag.endsWith("include") ? "filename" : el.tag.endsWith(":if") || el.tag.endsWith(":unless") ? "value" : "name"}="${name}">`;
}

// ---------------------------------------------------------------------------------------------
// Scopes: a property table chained to its parent. Block properties hold nodes.

type Property = { value: XacroValue } | { block: XmlNode[] };

class Scope {
  readonly table = new Map<string, Property>();
  constructor(readonly parent: Scope | undefined) {}
  find(name: string): Property | undefined {
    for (let s: Scope | undefined = this; s !== undefined; s = s.parent) {
      const p = s.table.get(name);
      if (p !== undefined) return p;
    }
    return undefined;
  }
  root(): Scope {
    let s: Scope = this;
    while (s.parent !== undefined) s = s.parent;
    return s;
  }
}

interface Macro {
  name: string;
  params: { name: string; kind: "value" | "block" | "blocks"; fallback?: string; fromCaller: boolean }[];
  body: XmlNode[];
  file: string;
}

/** xacro's reading of a literal: an int or a float where the text is one, else the text. */
function literal(text: string): XacroValue {
  const t = text.trim();
  if (t !== "" && /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t)) return Number(t);
  return text;
}

const MATH: Record<string, XacroValue> = {
  pi: Math.PI,
  e: Math.E,
  tau: 2 * Math.PI,
  inf: Number.POSITIVE_INFINITY,
  sin: num(Math.sin),
  cos: num(Math.cos),
  tan: num(Math.tan),
  asin: num(Math.asin),
  acos: num(Math.acos),
  atan: num(Math.atan),
  atan2: (y, x) => Math.atan2(Number(y), Number(x)),
  sinh: num(Math.sinh),
  cosh: num(Math.cosh),
  tanh: num(Math.tanh),
  sqrt: num(Math.sqrt),
  exp: num(Math.exp),
  log: (x, base) => (base === undefined ? Math.log(Number(x)) : Math.log(Number(x)) / Math.log(Number(base))),
  log10: num(Math.log10),
  pow: (x, y) => Number(x) ** Number(y),
  fabs: num(Math.abs),
  floor: num(Math.floor),
  ceil: num(Math.ceil),
  radians: (x) => (Number(x) * Math.PI) / 180,
  degrees: (x) => (Number(x) * 180) / Math.PI,
};

function num(f: (x: number) => number): (x: XacroValue) => XacroValue {
  return (x) => {
    if (typeof x !== "number")
      throw new ExpressionError(`a math function needs a number, got ${pythonStr(x)}`);
    return f(x);
  };
}

const PYTHON: Record<string, XacroValue> = {
  abs: num(Math.abs),
  min: (...xs) => Math.min(...(xs.length === 1 && Array.isArray(xs[0]) ? xs[0] : xs).map(Number)),
  max: (...xs) => Math.max(...(xs.length === 1 && Array.isArray(xs[0]) ? xs[0] : xs).map(Number)),
  int: (x) => Math.trunc(Number(typeof x === "string" ? x.trim() : x)),
  float: (x) => {
    const v = Number(typeof x === "string" ? x.trim() : x);
    if (Number.isNaN(v)) throw new ExpressionError(`float(${pythonStr(x)}): not a number`);
    return v;
  },
  str: (x) => pythonStr(x),
  bool: (x) => truthy(x),
  len: (x) => {
    if (typeof x === "string" || Array.isArray(x)) return x.length;
    if (x !== null && typeof x === "object") return Object.keys(x).length;
    throw new ExpressionError(`len() of ${pythonStr(x)}`);
  },
  round: (x, digits) => {
    const f = 10 ** Number(digits ?? 0);
    return Math.round(Number(x) * f) / f;
  },
};

/** A YAML file as xacro.load_yaml reads it: `!radians x` and `!degrees x` give radians. */
function loadYaml(path: string): XacroValue {
  const angle = (scale: number) => (value: string) => {
    const v = evaluateExpression(value, (n) => {
      if (n in MATH) return MATH[n];
      throw new ExpressionError(`unknown name "${n}"`);
    });
    return Number(v) * scale;
  };
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ExpressionError(
      `load_yaml: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? err})`,
    );
  }
  try {
    return parseYaml(text, {
      customTags: [
        { tag: "!radians", resolve: angle(1) },
        { tag: "!degrees", resolve: angle(Math.PI / 180) },
      ],
    }) as XacroValue;
  } catch (err) {
    throw new ExpressionError(`load_yaml: ${path}: not valid YAML: ${(err as Error).message.split("\n")[0]}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Package lookup for $(find pkg) and package://.

function packageName(dir: string): string | undefined {
  const manifest = join(dir, "package.xml");
  if (!existsSync(manifest)) return undefined;
  const m = /<name>\s*([^<\s]+)\s*<\/name>/.exec(readFileSync(manifest, "utf8"));
  return m?.[1];
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** A package in `dir`: dir itself, dir/pkg, or one folder further down (a workspace's src/). */
function findIn(dir: string, pkg: string): string | undefined {
  if (!isDirectory(dir)) return undefined;
  if (packageName(dir) === pkg) return dir;
  for (const candidate of [join(dir, pkg), join(dir, "share", pkg)])
    if (isDirectory(candidate) && packageName(candidate) === pkg) return candidate;
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return undefined;
  }
  for (const entry of entries.sort()) {
    const sub = join(dir, entry, pkg);
    if (isDirectory(sub) && packageName(sub) === pkg) return sub;
  }
  return undefined;
}

class Packages {
  private readonly cache = new Map<string, string>();
  constructor(
    private readonly paths: readonly string[],
    private readonly env: Readonly<Record<string, string | undefined>>,
  ) {}

  find(pkg: string): string {
    const known = this.cache.get(pkg);
    if (known !== undefined) return known;
    const split = (v: string | undefined) => (v ?? "").split(":").filter((p) => p !== "");
    // In search order: each place tried, and how a package is found there.
    const places: [string, () => string | undefined][] = [
      ...this.paths.map((p): [string, () => string | undefined] => [p, () => findIn(resolve(p), pkg)]),
      ...split(this.env.AMENT_PREFIX_PATH).map((prefix): [string, () => string | undefined] => [
        `${prefix}/share`,
        () => (isDirectory(join(prefix, "share", pkg)) ? join(prefix, "share", pkg) : undefined),
      ]),
      ...split(this.env.ROS_PACKAGE_PATH).map((p): [string, () => string | undefined] => [
        p,
        () => findIn(p, pkg),
      ]),
    ];
    const searched: string[] = [];
    let found: string | undefined;
    for (const [place, lookIn] of places) {
      searched.push(place);
      found = lookIn();
      if (found !== undefined) break;
    }
    // This project itself, wherever it is installed.
    if (found === undefined && pkg === packageName(packageRoot())) found = packageRoot();
    if (found === undefined) {
      const where =
        searched.length === 0
          ? "nowhere: no --package-path, AMENT_PREFIX_PATH or ROS_PACKAGE_PATH"
          : searched.slice(0, 4).join(", ") + (searched.length > 4 ? ", …" : "");
      throw new ExpressionError(`package "${pkg}" not found (searched ${where})`);
    }
    this.cache.set(pkg, found);
    return found;
  }

  /** package://pkg/rest → a file path; anything else unchanged. */
  uri(path: string): string {
    const m = /^package:\/\/([^/]+)\/(.*)$/.exec(path);
    return m === null ? path : join(this.find(m[1]), m[2]);
  }
}

// ---------------------------------------------------------------------------------------------
// The expander.

const XACRO = "xacro:";

class Expander {
  private readonly macros = new Map<string, Macro>();
  private readonly argDefaults = new Map<string, string>();
  readonly warnings: string[] = [];
  private readonly packages: Packages;
  private readonly env: Readonly<Record<string, string | undefined>>;
  private file: string;
  private depth = 0;

  constructor(
    file: string,
    private readonly options: XacroOptions,
  ) {
    this.file = file;
    this.env = options.env ?? process.env;
    this.packages = new Packages(options.packagePaths ?? [], this.env);
  }

  private fail(where: string, message: string): never {
    throw new XacroError(`${this.file}: ${where}: ${message}`);
  }

  /** `${...}` and `$(...)` in a text; a text that is one `${...}` keeps the value's type. */
  evaluate(text: string, scope: Scope, where: string): XacroValue {
    try {
      return this.substitute(text, scope);
    } catch (err) {
      if (err instanceof XacroError) throw err;
      this.fail(where, `${text.trim()}: ${(err as Error).message}`);
    }
  }

  private substitute(text: string, scope: Scope): XacroValue {
    const parts: XacroValue[] = [];
    let i = 0;
    let plain = "";
    while (i < text.length) {
      if (text.startsWith("$${", i) || text.startsWith("$$(", i)) {
        plain += text.slice(i + 1, i + 3);
        i += 3;
        continue;
      }
      if (text.startsWith("${", i) || text.startsWith("$(", i)) {
        const close = text[i + 1] === "{" ? "}" : ")";
        const end = matching(text, i + 1, close);
        if (end < 0) throw new ExpressionError(`unclosed "${text.slice(i, i + 2)}"`);
        const inner = text.slice(i + 2, end);
        if (plain !== "") parts.push(plain);
        plain = "";
        parts.push(
          close === "}"
            ? this.expression(this.textOf(this.substitute(inner, scope)), scope)
            : this.substitutionArg(this.textOf(this.substitute(inner, scope))),
        );
        i = end + 1;
        continue;
      }
      plain += text[i++];
    }
    if (plain !== "") parts.push(plain);
    if (parts.length === 1) return parts[0];
    return parts.map(pythonStr).join("");
  }

  private textOf(v: XacroValue): string {
    return typeof v === "string" ? v : pythonStr(v);
  }

  private expression(text: string, scope: Scope): XacroValue {
    return evaluateExpression(text, (name) => this.lookup(name, scope));
  }

  private lookup(name: string, scope: Scope): XacroValue {
    const p = scope.find(name);
    if (p !== undefined) {
      if ("block" in p)
        throw new ExpressionError(`"${name}" is a block property: use <xacro:insert_block name="${name}"/>`);
      return p.value;
    }
    if (name === "xacro") return this.xacroModule();
    if (name === "math") return MATH;
    if (name in MATH) return MATH[name];
    if (name in PYTHON) return PYTHON[name];
    if (name === "load_yaml") return this.xacroModule().load_yaml;
    throw new ExpressionError(`unknown name "${name}"`);
  }

  private xacroModule(): { [key: string]: XacroValue } {
    const say =
      (prefix: string) =>
      (...args: XacroValue[]) => {
        this.warnings.push(`${this.file}: ${prefix}${args.map(pythonStr).join(" ")}`);
        return "";
      };
    return {
      load_yaml: (file) => {
        const path = this.packages.uri(String(file));
        return loadYaml(isAbsolute(path) ? path : resolve(dirname(this.file), path));
      },
      warning: say("warning: "),
      message: say(""),
      error: (...args) => {
        throw new ExpressionError(`xacro.error: ${args.map(pythonStr).join(" ")}`);
      },
      ...MATH,
    };
  }

  private substitutionArg(command: string): XacroValue {
    const [verb, ...rest] = command.trim().split(/\s+/);
    switch (verb) {
      case "arg": {
        const name = rest[0];
        if (name === undefined) throw new ExpressionError("$(arg) needs a name");
        const given = this.options.args?.[name];
        if (given !== undefined) return literal(String(given));
        const fallback = this.argDefaults.get(name);
        if (fallback === undefined)
          throw new ExpressionError(
            `argument "${name}" has no value: give it (name:=value) or declare <xacro:arg name="${name}" default="..."/>`,
          );
        return literal(fallback);
      }
      case "find":
        if (rest[0] === undefined) throw new ExpressionError("$(find) needs a package name");
        return this.packages.find(rest[0]);
      case "env": {
        const v = this.env[rest[0] ?? ""];
        if (v === undefined) throw new ExpressionError(`environment variable "${rest[0]}" is not set`);
        return v;
      }
      case "optenv":
        return this.env[rest[0] ?? ""] ?? rest.slice(1).join(" ");
      case "dirname":
        return dirname(resolve(this.file));
      default:
        throw new ExpressionError(
          `substitution "$(${verb})" is not supported (arg, find, env, optenv, dirname are)`,
        );
    }
  }

  // --- elements -------------------------------------------------------------------------------

  expandChildren(nodes: readonly XmlNode[], scope: Scope): XmlNode[] {
    const out: XmlNode[] = [];
    for (const node of nodes) this.expandNode(node, scope, out);
    return out;
  }

  private expandNode(node: XmlNode, scope: Scope, out: XmlNode[]): void {
    if (node.kind === "comment") return;
    if (node.kind === "text") {
      if (node.text.trim() === "") return;
      const v = this.evaluate(node.text, scope, "text");
      out.push({ kind: "text", text: this.textOf(v) });
      return;
    }
    if (!node.tag.startsWith(XACRO)) {
      const attributes: [string, string][] = [];
      for (const [k, v] of node.attributes) {
        if (k === "xmlns:xacro") continue;
        attributes.push([k, this.textOf(this.evaluate(v, scope, `<${node.tag} ${k}="${v}">`))]);
      }
      out.push({
        kind: "element",
        tag: node.tag,
        attributes,
        children: this.expandChildren(node.children, scope),
      });
      return;
    }
    if (++this.depth > 200)
      this.fail(describe(node), "macros nested more than 200 deep (a macro that calls itself?)");
    try {
      this.expandDirective(node, scope, out);
    } finally {
      this.depth--;
    }
  }

  private need(el: Element, name: string): string {
    const v = attribute(el, name);
    if (v === undefined) this.fail(describe(el), `needs a "${name}" attribute`);
    return v;
  }

  private expandDirective(el: Element, scope: Scope, out: XmlNode[]): void {
    const directive = el.tag.slice(XACRO.length);
    switch (directive) {
      case "property":
        this.defineProperty(el, scope);
        return;
      case "macro":
        this.defineMacro(el);
        return;
      case "arg": {
        const name = this.need(el, "name");
        if (!this.argDefaults.has(name)) {
          const fallback = attribute(el, "default");
          if (fallback !== undefined)
            this.argDefaults.set(name, this.textOf(this.evaluate(fallback, scope, describe(el))));
        }
        return;
      }
      case "if":
      case "unless": {
        const v = this.evaluate(this.need(el, "value"), scope, describe(el));
        const on = condition(v);
        if (on === undefined) this.fail(describe(el), `value must be true/false/1/0, got "${pythonStr(v)}"`);
        if (on === (directive === "if")) out.push(...this.expandChildren(el.children, scope));
        return;
      }
      case "insert_block": {
        const name = this.need(el, "name");
        const p = scope.find(name);
        if (p === undefined || !("block" in p)) this.fail(describe(el), `no block "${name}" here`);
        out.push(...this.expandChildren(p.block, scope));
        return;
      }
      case "include":
        this.include(el, scope, out);
        return;
      case "call": {
        const name = this.textOf(this.evaluate(this.need(el, "macro"), scope, describe(el)));
        this.callMacro(name, el, scope, out);
        return;
      }
      case "element":
      case "attribute":
        this.fail(describe(el), `<xacro:${directive}> is not supported`);
        break;
      default:
        this.callMacro(directive, el, scope, out);
    }
  }

  private defineProperty(el: Element, scope: Scope): void {
    const name = this.need(el, "name");
    if (name.startsWith("__")) this.fail(describe(el), "property names starting with __ are reserved");
    const target = (() => {
      switch (attribute(el, "scope") ?? "local") {
        case "local":
          return scope;
        case "parent":
          return scope.parent ?? scope;
        case "global":
          return scope.root();
        default:
          return this.fail(
            describe(el),
            `scope must be local, parent or global, got "${attribute(el, "scope")}"`,
          );
      }
    })();
    const raw = attribute(el, "value") ?? attribute(el, "default");
    if (raw === undefined) {
      target.table.set(name, { block: el.children });
      return;
    }
    if (attribute(el, "value") === undefined && target.find(name) !== undefined) return; // default: keep a set value
    const v = this.evaluate(raw, scope, describe(el));
    target.table.set(name, { value: typeof v === "string" ? literal(v) : v });
  }

  private defineMacro(el: Element): void {
    const name = this.need(el, "name").replace(/^xacro:/, "");
    const params: Macro["params"] = [];
    for (const spec of splitParams(attribute(el, "params") ?? "")) {
      const kind = spec.startsWith("**") ? "blocks" : spec.startsWith("*") ? "block" : "value";
      const body = spec.replace(/^\*+/, "");
      const m = /^([A-Za-z_][A-Za-z0-9_]*)(?::=(.*)|=(.*))?$/.exec(body);
      if (m === null) this.fail(describe(el), `bad parameter "${spec}"`);
      let fallback: string | undefined = m[2] ?? m[3];
      let fromCaller = false;
      if (fallback !== undefined && fallback.startsWith("^")) {
        fromCaller = true;
        fallback = fallback.startsWith("^|") ? fallback.slice(2) : undefined;
      }
      if (fallback !== undefined && /^'.*'$|^".*"$/.test(fallback)) fallback = fallback.slice(1, -1);
      params.push({ name: m[1], kind, fallback, fromCaller });
    }
    this.macros.set(name, { name, params, body: el.children, file: this.file });
  }

  private callMacro(name: string, el: Element, scope: Scope, out: XmlNode[]): void {
    const macro = this.macros.get(name);
    if (macro === undefined)
      this.fail(describe(el), `no macro "${name}" is defined (or an unknown xacro tag)`);
    const local = new Scope(scope);
    const given = new Map(el.attributes.filter(([k]) => k !== "macro"));
    const blocks = el.children.filter((c): c is Element => c.kind === "element");
    let nextBlock = 0;
    for (const param of macro.params) {
      if (param.kind !== "value") {
        const block = blocks[nextBlock++];
        if (block === undefined) this.fail(describe(el), `macro "${name}" needs a block for *${param.name}`);
        local.table.set(param.name, { block: param.kind === "block" ? [block] : block.children });
        continue;
      }
      const raw = given.get(param.name);
      given.delete(param.name);
      if (raw !== undefined) {
        const v = this.evaluate(raw, scope, `${describe(el)} ${param.name}="${raw}"`);
        local.table.set(param.name, { value: typeof v === "string" ? literal(v) : v });
      } else if (param.fromCaller && scope.find(param.name) !== undefined) {
        local.table.set(param.name, scope.find(param.name) as Property);
      } else if (param.fallback !== undefined) {
        const v = this.evaluate(param.fallback, scope, `macro "${name}" default of ${param.name}`);
        local.table.set(param.name, { value: typeof v === "string" ? literal(v) : v });
      } else {
        this.fail(describe(el), `macro "${name}" needs parameter "${param.name}"`);
      }
    }
    if (given.size > 0) this.fail(describe(el), `macro "${name}" has no parameter "${[...given.keys()][0]}"`);
    const caller = this.file;
    this.file = macro.file;
    try {
      out.push(...this.expandChildren(macro.body, local));
    } finally {
      this.file = caller;
    }
  }

  private include(el: Element, scope: Scope, out: XmlNode[]): void {
    if (attribute(el, "ns") !== undefined)
      this.fail(describe(el), "namespaced includes (ns=) are not supported");
    const name = this.textOf(this.evaluate(this.need(el, "filename"), scope, describe(el)));
    let path: string;
    try {
      path = this.packages.uri(name);
    } catch (err) {
      this.fail(describe(el), (err as Error).message);
    }
    if (!isAbsolute(path)) path = resolve(dirname(this.file), path);
    const root = readDocument(path, `${this.file}: <xacro:include filename="${name}">`);
    const caller = this.file;
    this.file = path;
    try {
      out.push(...this.expandChildren(root.children, scope));
    } finally {
      this.file = caller;
    }
  }
}

/** A macro's params split at whitespace outside quotes: `a b:='0 0 0' *c` → a, b:='0 0 0', *c. */
function splitParams(text: string): string[] {
  return text.match(/(?:[^\s'"]+|'[^']*'|"[^"]*")+/g) ?? [];
}

/** The position of the bracket closing the one at `open` (nested ones skipped), or −1. */
function matching(text: string, open: number, close: string): number {
  const opener = text[open];
  let depth = 0;
  let quote: string | undefined;
  for (let i = open; i < text.length; i++) {
    const c = text[i];
    if (quote !== undefined) {
      if (c === quote) quote = undefined;
    } else if (c === "'" || c === '"') quote = c;
    else if (c === opener) depth++;
    else if (c === close && --depth === 0) return i;
  }
  return -1;
}

function condition(v: XacroValue): boolean | undefined {
  if (typeof v === "boolean") return v;
  if (typeof v === "number") return v !== 0;
  if (typeof v === "string") {
    const t = v.trim().toLowerCase();
    if (t === "true" || t === "1") return true;
    if (t === "false" || t === "0") return false;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Writing the result.

function xmlEscape(text: string, quote: boolean): string {
  const t = text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
  return quote ? t.replaceAll('"', "&quot;") : t;
}

/** Writes an element with its children indented by depth (text-only elements stay on one line). */
function write(node: XmlNode, out: string[], depth = 0): void {
  const pad = "  ".repeat(depth);
  if (node.kind === "text") {
    out.push(`${pad}${xmlEscape(node.text.trim(), false)}\n`);
    return;
  }
  if (node.kind === "comment") return;
  const attrs = node.attributes.map(([k, v]) => ` ${k}="${xmlEscape(v, true)}"`).join("");
  if (node.children.length === 0) {
    out.push(`${pad}<${node.tag}${attrs}/>\n`);
  } else if (node.children.every((c) => c.kind === "text")) {
    const text = node.children.map((c) => (c.kind === "text" ? c.text : "")).join("");
    out.push(`${pad}<${node.tag}${attrs}>${xmlEscape(text, false)}</${node.tag}>\n`);
  } else {
    out.push(`${pad}<${node.tag}${attrs}>\n`);
    for (const child of node.children) write(child, out, depth + 1);
    out.push(`${pad}</${node.tag}>\n`);
  }
}

/** Expands a xacro file to URDF text. Errors are XacroError, one line, naming file and construct. */
export function expandXacro(path: string, options: XacroOptions = {}): XacroResult {
  const root = readDocument(path, undefined);
  const expander = new Expander(path, options);
  const scope = new Scope(undefined);
  const children = expander.expandChildren(root.children, scope);
  const robot: XmlNode = {
    kind: "element",
    tag: root.tag,
    attributes: root.attributes
      .filter(([k]) => k !== "xmlns:xacro")
      .map(([k, v]) => [k, pythonStr(expander.evaluate(v, scope, `<${root.tag} ${k}>`))]),
    children,
  };
  const out = ['<?xml version="1.0"?>\n'];
  write(robot, out);
  return { xml: out.join(""), warnings: expander.warnings };
}

/** The basename a xacro expands to: `panda.urdf.xacro` → `panda.urdf`. */
export function expandedName(path: string): string {
  const name = basename(path).replace(/\.xacro$/, "");
  return name.endsWith(".urdf") ? name : `${name}.urdf`;
}
