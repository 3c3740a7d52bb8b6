CREATE TABLE "models" (
	"id" integer PRIMARY KEY NOT NULL,
	"owner" text NOT NULL,
	"job_id" uuid NOT NULL,
	"name" text NOT NULL,
	"description" text NOT NULL,
	"base_model_name" text NOT NULL,
	"base_model_sha256" text NOT NULL,
	"adapter_blob_id" text NOT NULL,
	"manifest_hash" text NOT NULL,
	"manifest_blob_id" text NOT NULL,
	"metadata_hash" text NOT NULL,
	"datanets" jsonb NOT NULL,
	"price_per_1k_input" text NOT NULL,
	"price_per_1k_output" text NOT NULL,
	"split" jsonb NOT NULL,
	"active" boolean DEFAULT true NOT NULL,
	"tx_hash" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "models_job_id_unique" UNIQUE("job_id"),
	CONSTRAINT "models_adapter_blob_id_unique" UNIQUE("adapter_blob_id")
);
--> statement-breakpoint
ALTER TABLE "models" ADD CONSTRAINT "models_job_id_jobs_id_fk" FOREIGN KEY ("job_id") REFERENCES "public"."jobs"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "models_owner_idx" ON "models" USING btree ("owner");--> statement-breakpoint
CREATE INDEX "models_base_idx" ON "models" USING btree ("base_model_name");