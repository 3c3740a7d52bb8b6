CREATE TABLE "access_requests" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"datanet_id" integer NOT NULL,
	"requester" text NOT NULL,
	"purpose" text NOT NULL,
	"status" text NOT NULL,
	"request_tx" text NOT NULL,
	"decision_tx" text,
	"decision_reason" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"decided_at" timestamp with time zone,
	"active" boolean DEFAULT true NOT NULL
);
--> statement-breakpoint
CREATE TABLE "contributions" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"datanet_id" integer NOT NULL,
	"contributor" text NOT NULL,
	"content_hash" text NOT NULL,
	"file_name" text,
	"mime" text NOT NULL,
	"blob_id" text NOT NULL,
	"bytes" bigint NOT NULL,
	"license" text NOT NULL,
	"signature" text NOT NULL,
	"nonce" text NOT NULL,
	"status" text NOT NULL,
	"score" double precision NOT NULL,
	"reasons" jsonb NOT NULL,
	"row_count" integer NOT NULL,
	"accepted_row_count" integer NOT NULL,
	"decided_by" text,
	"decided_at" timestamp with time zone,
	"decision_reason" text,
	"version" integer,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "datanet_curators" (
	"datanet_id" integer NOT NULL,
	"address" text NOT NULL,
	"tx_hash" text NOT NULL,
	"added_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "datanet_curators_datanet_id_address_pk" PRIMARY KEY("datanet_id","address")
);
--> statement-breakpoint
CREATE TABLE "datanet_rows" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"datanet_id" integer NOT NULL,
	"contribution_id" uuid NOT NULL,
	"contributor" text NOT NULL,
	"position" integer NOT NULL,
	"row_hash" text NOT NULL,
	"content" jsonb NOT NULL,
	"text" text NOT NULL,
	"status" text NOT NULL,
	"score" double precision NOT NULL,
	"reasons" jsonb NOT NULL,
	"minhash" text NOT NULL,
	"duplicate_of" uuid,
	"version" integer,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "datanet_versions" (
	"datanet_id" integer NOT NULL,
	"version" integer NOT NULL,
	"root" text NOT NULL,
	"row_count" integer NOT NULL,
	"manifest_id" text NOT NULL,
	"committed_by" text NOT NULL,
	"tx_hash" text NOT NULL,
	"added_rows" integer NOT NULL,
	"committed_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "datanet_versions_datanet_id_version_pk" PRIMARY KEY("datanet_id","version")
);
--> statement-breakpoint
CREATE TABLE "datanets" (
	"id" integer PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"summary" text NOT NULL,
	"description" text NOT NULL,
	"tags" jsonb NOT NULL,
	"modality" text NOT NULL,
	"license" text NOT NULL,
	"policy" text NOT NULL,
	"rules" jsonb NOT NULL,
	"owner" text NOT NULL,
	"metadata_hash" text NOT NULL,
	"tx_hash" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "access_requests" ADD CONSTRAINT "access_requests_datanet_id_datanets_id_fk" FOREIGN KEY ("datanet_id") REFERENCES "public"."datanets"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "contributions" ADD CONSTRAINT "contributions_datanet_id_datanets_id_fk" FOREIGN KEY ("datanet_id") REFERENCES "public"."datanets"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "datanet_curators" ADD CONSTRAINT "datanet_curators_datanet_id_datanets_id_fk" FOREIGN KEY ("datanet_id") REFERENCES "public"."datanets"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "datanet_rows" ADD CONSTRAINT "datanet_rows_datanet_id_datanets_id_fk" FOREIGN KEY ("datanet_id") REFERENCES "public"."datanets"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "datanet_rows" ADD CONSTRAINT "datanet_rows_contribution_id_contributions_id_fk" FOREIGN KEY ("contribution_id") REFERENCES "public"."contributions"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "datanet_versions" ADD CONSTRAINT "datanet_versions_datanet_id_datanets_id_fk" FOREIGN KEY ("datanet_id") REFERENCES "public"."datanets"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "access_requests_datanet_idx" ON "access_requests" USING btree ("datanet_id","requester");--> statement-breakpoint
CREATE UNIQUE INDEX "contributions_nonce_idx" ON "contributions" USING btree ("contributor","nonce");--> statement-breakpoint
CREATE INDEX "contributions_datanet_status_idx" ON "contributions" USING btree ("datanet_id","status");--> statement-breakpoint
CREATE INDEX "contributions_contributor_idx" ON "contributions" USING btree ("contributor");--> statement-breakpoint
CREATE INDEX "datanet_rows_datanet_hash_idx" ON "datanet_rows" USING btree ("datanet_id","row_hash");--> statement-breakpoint
CREATE INDEX "datanet_rows_contribution_idx" ON "datanet_rows" USING btree ("contribution_id");--> statement-breakpoint
CREATE INDEX "datanet_rows_datanet_version_idx" ON "datanet_rows" USING btree ("datanet_id","version");