CREATE TABLE "attribution_indexes" (
	"datanet_id" integer NOT NULL,
	"version" integer NOT NULL,
	"tokenizer" text NOT NULL,
	"model" text NOT NULL,
	"status" text NOT NULL,
	"shards" jsonb NOT NULL,
	"tokens" bigint DEFAULT 0 NOT NULL,
	"rows" integer DEFAULT 0 NOT NULL,
	"build_seconds" double precision,
	"error" jsonb,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "attribution_indexes_datanet_id_version_tokenizer_pk" PRIMARY KEY("datanet_id","version","tokenizer")
);
--> statement-breakpoint
ALTER TABLE "attribution_indexes" ADD CONSTRAINT "attribution_indexes_datanet_id_datanets_id_fk" FOREIGN KEY ("datanet_id") REFERENCES "public"."datanets"("id") ON DELETE no action ON UPDATE no action;