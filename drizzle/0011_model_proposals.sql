CREATE TABLE "model_proposals" (
	"id" integer PRIMARY KEY NOT NULL,
	"spec" jsonb NOT NULL,
	"spec_hash" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "proposal_reports" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"proposal_id" integer NOT NULL,
	"model_id" integer NOT NULL,
	"metric" text NOT NULL,
	"value" double precision NOT NULL,
	"score" text NOT NULL,
	"meets_bar" boolean NOT NULL,
	"rows" integer NOT NULL,
	"targets" integer NOT NULL,
	"report_blob_id" text NOT NULL,
	"tx_hash" text,
	"job_id" uuid,
	"requested_by" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "proposal_reports" ADD CONSTRAINT "proposal_reports_proposal_id_model_proposals_id_fk" FOREIGN KEY ("proposal_id") REFERENCES "public"."model_proposals"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "proposal_reports" ADD CONSTRAINT "proposal_reports_job_id_jobs_id_fk" FOREIGN KEY ("job_id") REFERENCES "public"."jobs"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "proposal_reports_proposal_idx" ON "proposal_reports" USING btree ("proposal_id","id");