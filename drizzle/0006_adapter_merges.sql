CREATE TABLE "adapter_merges" (
	"id" text PRIMARY KEY NOT NULL,
	"recipe_hash" text NOT NULL,
	"method" text NOT NULL,
	"params" jsonb NOT NULL,
	"sources" jsonb NOT NULL,
	"base_model" text NOT NULL,
	"rank" integer NOT NULL,
	"bytes" integer NOT NULL,
	"truncation_error" double precision,
	"created_by" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "adapter_merges_recipe_hash_unique" UNIQUE("recipe_hash")
);
--> statement-breakpoint
CREATE INDEX "adapter_merges_created_by_idx" ON "adapter_merges" USING btree ("created_by");