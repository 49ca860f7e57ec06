/**
 * The part of GraphQL the ledger simulator understands: one query or mutation (picked by name
 * when the document has several) with variables, aliased fields with arguments (variables or
 * literals: strings, numbers, booleans, null, enums, lists, objects) and nested selections.
 * No fragments, directives or block strings: what Valueflows clients send for creates and reads.
 */

export type ValueNode =
  | { kind: 'var'; name: string }
  | { kind: 'literal'; value: unknown }
  | { kind: 'list'; items: ValueNode[] }
  | { kind: 'object'; fields: Record<string, ValueNode> };

export interface Field {
  alias: string | null;
  name: string;
  args: Record<string, ValueNode>;
  selections: Field[] | null;
}

export interface Operation {
  type: 'query' | 'mutation';
  name: string | null;
  variables: { name: string; type: string }[];
  selections: Field[];
}

export class GraphqlSyntaxError extends Error {
  override name = 'GraphqlSyntaxError';
}

type Token = { t: 'punct'; v: string; at: number } | { t: 'name'; v: string; at: number } | { t: 'value'; v: unknown; at: number };

const TOKEN = /[\s,\uFEFF]+|#[^\n\r]*|(\.\.\.|[{}()[\]:$!=@|&])|([_A-Za-z][_0-9A-Za-z]*)|(-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?)|("(?:[^"\\\n\r]|\\(?:["\\/bfnrt]|u[0-9A-Fa-f]{4}))*")/y;

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < src.length) {
    const at = TOKEN.lastIndex;
    if (src.startsWith('"""', at)) throw new GraphqlSyntaxError(`block strings are not in the simulator's GraphQL subset (at ${at})`);
    const m = TOKEN.exec(src);
    if (!m) throw new GraphqlSyntaxError(`unexpected character "${src[at]}" at ${at}`);
    if (m[1]) out.push({ t: 'punct', v: m[1], at });
    else if (m[2]) out.push({ t: 'name', v: m[2], at });
    else if (m[3]) out.push({ t: 'value', v: Number(m[3]), at });
    else if (m[4]) out.push({ t: 'value', v: JSON.parse(m[4]) as string, at });
  }
  return out;
}

class Parser {
  private i = 0;
  constructor(private readonly tokens: Token[]) {}

  private peek(): Token | undefined {
    return this.tokens[this.i];
  }
  private where(): string {
    const t = this.peek();
    return t ? `at ${t.at}` : 'at the end';
  }
  private isPunct(v: string): boolean {
    const t = this.peek();
    return t?.t === 'punct' && t.v === v;
  }
  private punct(v: string): void {
    if (!this.isPunct(v)) throw new GraphqlSyntaxError(`expected "${v}" ${this.where()}`);
    this.i++;
  }
  private name(): string {
    const t = this.peek();
    if (t?.t !== 'name') throw new GraphqlSyntaxError(`expected a name ${this.where()}`);
    this.i++;
    return t.v;
  }

  document(): Operation[] {
    const ops: Operation[] = [];
    while (this.peek()) ops.push(this.operation());
    if (ops.length === 0) throw new GraphqlSyntaxError('the document has no operation');
    return ops;
  }

  private operation(): Operation {
    if (this.isPunct('{')) return { type: 'query', name: null, variables: [], selections: this.selectionSet() };
    const kind = this.name();
    if (kind === 'fragment' || kind === 'subscription') throw new GraphqlSyntaxError(`${kind}s are not in the simulator's GraphQL subset`);
    if (kind !== 'query' && kind !== 'mutation') throw new GraphqlSyntaxError(`expected query or mutation, got "${kind}"`);
    const name = this.peek()?.t === 'name' ? this.name() : null;
    const variables: Operation['variables'] = [];
    if (this.isPunct('(')) {
      this.punct('(');
      while (!this.isPunct(')')) {
        this.punct('$');
        const v = this.name();
        this.punct(':');
        variables.push({ name: v, type: this.type() });
        if (this.isPunct('=')) throw new GraphqlSyntaxError('default values are not in the simulator\'s GraphQL subset');
      }
      this.punct(')');
    }
    if (this.isPunct('@')) throw new GraphqlSyntaxError('directives are not in the simulator\'s GraphQL subset');
    return { type: kind, name, variables, selections: this.selectionSet() };
  }

  private type(): string {
    let t: string;
    if (this.isPunct('[')) {
      this.punct('[');
      t = `[${this.type()}]`;
      this.punct(']');
    } else t = this.name();
    if (this.isPunct('!')) {
      this.punct('!');
      t += '!';
    }
    return t;
  }

  private selectionSet(): Field[] {
    this.punct('{');
    const fields: Field[] = [];
    while (!this.isPunct('}')) {
      if (this.isPunct('...')) throw new GraphqlSyntaxError('fragments are not in the simulator\'s GraphQL subset');
      let alias: string | null = null;
      let name = this.name();
      if (this.isPunct(':')) {
        this.punct(':');
        alias = name;
        name = this.name();
      }
      const args: Record<string, ValueNode> = {};
      if (this.isPunct('(')) {
        this.punct('(');
        while (!this.isPunct(')')) {
          const a = this.name();
          this.punct(':');
          args[a] = this.value();
        }
        this.punct(')');
      }
      if (this.isPunct('@')) throw new GraphqlSyntaxError('directives are not in the simulator\'s GraphQL subset');
      fields.push({ alias, name, args, selections: this.isPunct('{') ? this.selectionSet() : null });
    }
    this.punct('}');
    return fields;
  }

  private value(): ValueNode {
    const t = this.peek();
    if (!t) throw new GraphqlSyntaxError('expected a value at the end');
    if (t.t === 'value') {
      this.i++;
      return { kind: 'literal', value: t.v };
    }
    if (t.t === 'name') {
      this.i++;
      return { kind: 'literal', value: t.v === 'true' ? true : t.v === 'false' ? false : t.v === 'null' ? null : t.v };
    }
    if (t.v === '$') {
      this.i++;
      return { kind: 'var', name: this.name() };
    }
    if (t.v === '[') {
      this.i++;
      const items: ValueNode[] = [];
      while (!this.isPunct(']')) items.push(this.value());
      this.punct(']');
      return { kind: 'list', items };
    }
    if (t.v === '{') {
      this.i++;
      const fields: Record<string, ValueNode> = {};
      while (!this.isPunct('}')) {
        const k = this.name();
        this.punct(':');
        fields[k] = this.value();
      }
      this.punct('}');
      return { kind: 'object', fields };
    }
    throw new GraphqlSyntaxError(`expected a value at ${t.at}`);
  }
}

/** The operation to run: the one named, or the only one. */
export function parseOperation(source: string, operationName?: string | null): Operation {
  const ops = new Parser(tokenize(source)).document();
  if (operationName) {
    const op = ops.find((o) => o.name === operationName);
    if (!op) throw new GraphqlSyntaxError(`no operation named "${operationName}"`);
    return op;
  }
  if (ops.length > 1) throw new GraphqlSyntaxError('the document has several operations: name one with operationName');
  return ops[0]!;
}

/** An argument's value with the request's variables put in. */
export function valueOf(node: ValueNode, variables: Record<string, unknown>): unknown {
  switch (node.kind) {
    case 'var':
      return variables[node.name] ?? null;
    case 'literal':
      return node.value;
    case 'list':
      return node.items.map((n) => valueOf(n, variables));
    case 'object':
      return Object.fromEntries(Object.entries(node.fields).map(([k, n]) => [k, valueOf(n, variables)]));
  }
}

/** The selected fields of a result object, under their aliases; references become `{ id }` objects. */
export function project(value: unknown, selections: Field[] | null): unknown {
  if (value === null || value === undefined) return null;
  if (!selections) return value;
  if (Array.isArray(value)) return value.map((v) => project(v, selections));
  if (typeof value !== 'object') return project({ id: value }, selections);
  const obj = value as Record<string, unknown>;
  return Object.fromEntries(selections.map((f) => [f.alias ?? f.name, project(obj[f.name], f.selections)]));
}
