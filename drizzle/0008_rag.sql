CREATE TABLE "rag_answers" (
	"usage_id" uuid PRIMARY KEY NOT NULL,
	"question" text NOT NULL,
	"messages" jsonb NOT NULL,
	"datanets" jsonb NOT NULL,
	"sources" jsonb NOT NULL,
	"citations" jsonb NOT NULL,
	"answer" text NOT NULL,
	"kind" text NOT NULL,
	"strict" boolean NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "rag_chunks" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"datanet_id" integer NOT NULL,
	"embedder" text NOT NULL,
	"version" integer NOT NULL,
	"row_id" uuid NOT NULL,
	"row_hash" text NOT NULL,
	"contributor" text NOT NULL,
	"ord" integer NOT NULL,
	"char_start" integer NOT NULL,
	"char_end" integer NOT NULL,
	"tokens" integer NOT NULL,
	"text" text NOT NULL,
	"text_sha256" text NOT NULL,
	"tsv" "tsvector" GENERATED ALWAYS AS (to_tsvector('english', "text")) STORED NOT NULL,
	"embedding" "bytea" NOT NULL
);
--> statement-breakpoint
CREATE TABLE "rag_index_state" (
	"datanet_id" integer NOT NULL,
	"embedder" text NOT NULL,
	"version" integer NOT NULL,
	"chunks" integer NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "rag_index_state_datanet_id_embedder_pk" PRIMARY KEY("datanet_id","embedder")
);
--> statement-breakpoint
ALTER TABLE "rag_answers" ADD CONSTRAINT "rag_answers_usage_id_inference_usage_id_fk" FOREIGN KEY ("usage_id") REFERENCES "public"."inference_usage"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "rag_chunks" ADD CONSTRAINT "rag_chunks_datanet_id_datanets_id_fk" FOREIGN KEY ("datanet_id") REFERENCES "public"."datanets"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "rag_chunks" ADD CONSTRAINT "rag_chunks_row_id_datanet_rows_id_fk" FOREIGN KEY ("row_id") REFERENCES "public"."datanet_rows"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "rag_index_state" ADD CONSTRAINT "rag_index_state_datanet_id_datanets_id_fk" FOREIGN KEY ("datanet_id") REFERENCES "public"."datanets"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "rag_chunks_datanet_idx" ON "rag_chunks" USING btree ("datanet_id","embedder","version");--> statement-breakpoint
CREATE UNIQUE INDEX "rag_chunks_row_ord_idx" ON "rag_chunks" USING btree ("embedder","row_id","ord");--> statement-breakpoint
CREATE INDEX "rag_chunks_tsv_idx" ON "rag_chunks" USING gin ("tsv");