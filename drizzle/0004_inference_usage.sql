CREATE TABLE "inference_usage" (
	"id" uuid PRIMARY KEY NOT NULL,
	"caller" text NOT NULL,
	"credential_id" text NOT NULL,
	"endpoint" text NOT NULL,
	"model" text NOT NULL,
	"base_model" text NOT NULL,
	"adapters" jsonb NOT NULL,
	"published_model_id" integer,
	"prompt_tokens" integer NOT NULL,
	"completion_tokens" integer NOT NULL,
	"latency_ms" double precision NOT NULL,
	"status" text NOT NULL,
	"receipt" jsonb NOT NULL,
	"receipt_hash" text NOT NULL,
	"fee_wei" text,
	"settlement_tx" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX "inference_usage_caller_idx" ON "inference_usage" USING btree ("caller","created_at");--> statement-breakpoint
CREATE INDEX "inference_usage_created_idx" ON "inference_usage" USING btree ("created_at");