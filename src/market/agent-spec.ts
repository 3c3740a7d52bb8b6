/**
 * What an agent is (issue #8, item 3): a named composition served as a model. Its specification
 * is canonical JSON (RFC 8785) whose sha256 is what AgentStaking records on-chain, so anyone can
 * check that a node serves the agent its owner launched.
 *
 * An agent runs its steps in sequence. Each step is one generation on a model (a base model, a
 * published `model:<id>` or an adapter), optionally composed with more adapters at weights and
 * grounded on datanets (RAG). The first step answers the caller's conversation; each later step
 * sees that conversation, the previous step's answer as the assistant's, and its own
 * `instruction` as the next user turn (e.g. "Rewrite this for a child."). The last step's answer
 * is the agent's. Every step is an ordinary paid call, so each model and the data behind it are
 * paid through Proof of Attribution as if the caller had called it.
 */
import { Type, type Static } from 'typebox';
import { OpenLedgerError } from '../errors.ts';
import { RAG_MAX_K } from '../rag/service.ts';
import { MAX_ADAPTER_WEIGHT, MAX_ADAPTERS_PER_REQUEST } from '../serving/index.ts';
import { parseSpec, specHash } from './spec.ts';

/** The most steps an agent may chain (each is a full generation, paid separately). */
export const MAX_AGENT_STEPS = 4;
/** AgentStaking's name rule: lower-case letters, digits and inner '-', 3 to 48 characters. */
export const AGENT_NAME = /^[a-z0-9](?:[a-z0-9-]{1,46})[a-z0-9]$/;

export const AgentStep = Type.Object(
  {
    model: Type.String({
      minLength: 1,
      maxLength: 200,
      description: 'A base model, a published model (`model:<id>`) or an adapter name.',
    }),
    adapters: Type.Optional(
      Type.Array(
        Type.Object(
          {
            id: Type.String({ minLength: 1, maxLength: 200 }),
            weight: Type.Number({ minimum: -MAX_ADAPTER_WEIGHT, maximum: MAX_ADAPTER_WEIGHT }),
          },
          { additionalProperties: false },
        ),
        { maxItems: MAX_ADAPTERS_PER_REQUEST },
      ),
    ),
    rag: Type.Optional(
      Type.Object(
        {
          datanets: Type.Array(Type.Integer({ minimum: 1 }), { minItems: 1, maxItems: 16 }),
          k: Type.Optional(Type.Integer({ minimum: 1, maximum: RAG_MAX_K })),
          strict: Type.Optional(Type.Boolean()),
        },
        { additionalProperties: false },
      ),
    ),
    /** For a step after the first: the user turn that follows the previous step's answer. */
    instruction: Type.Optional(Type.String({ minLength: 1, maxLength: 4000 })),
    max_tokens: Type.Optional(Type.Integer({ minimum: 1 })),
    temperature: Type.Optional(Type.Number({ minimum: 0, maximum: 2 })),
  },
  { additionalProperties: false },
);

export const AgentSpec = Type.Object(
  {
    name: Type.String({ pattern: AGENT_NAME.source }),
    description: Type.Optional(Type.String({ maxLength: 2000 })),
    /** The system prompt of every step. */
    system: Type.Optional(Type.String({ maxLength: 8000 })),
    steps: Type.Array(AgentStep, { minItems: 1, maxItems: MAX_AGENT_STEPS }),
  },
  { additionalProperties: false },
);
export type AgentSpec = Static<typeof AgentSpec>;
export type AgentStep = Static<typeof AgentStep>;

/** Checks a specification's shape; the error names the first wrong field. */
export function parseAgentSpec(value: unknown): AgentSpec {
  const spec = parseSpec(AgentSpec, value, 'agent specification', (field) =>
    field === 'name'
      ? 'Agent names are 3 to 48 lower-case letters, digits and inner hyphens.'
      : 'See docs/market.md, "Agents", for the specification format.',
  );
  spec.steps.forEach((step, i) => {
    if (i === 0 && step.instruction !== undefined)
      throw new OpenLedgerError(
        'VALIDATION_FAILED',
        'steps[0].instruction: the first step answers the caller; only later steps take an instruction.',
        { details: { field: 'steps[0].instruction' } },
      );
    if (i > 0 && step.instruction === undefined)
      throw new OpenLedgerError(
        'VALIDATION_FAILED',
        `steps[${i}].instruction is required: it is the user turn that follows the previous step's answer.`,
        { details: { field: `steps[${i}].instruction` } },
      );
  });
  return spec;
}

/** sha256 (hex) of the specification's canonical JSON: what AgentStaking records. */
export function agentSpecHash(spec: AgentSpec): string {
  return specHash(spec);
}
