CREATE TABLE "attribution_epochs" (
	"epoch" integer PRIMARY KEY NOT NULL,
	"status" text NOT NULL,
	"receipts_root" text NOT NULL,
	"payouts_root" text NOT NULL,
	"total" text NOT NULL,
	"receipts" integer NOT NULL,
	"receipts_tree" jsonb NOT NULL,
	"payouts_tree" jsonb NOT NULL,
	"tx_hash" text NOT NULL,
	"gas_used" bigint NOT NULL,
	"posted_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "attribution_payouts" (
	"usage_id" uuid NOT NULL,
	"address" text NOT NULL,
	"amount" text NOT NULL,
	"role" text NOT NULL,
	"detail" jsonb NOT NULL,
	"datanets" jsonb NOT NULL,
	CONSTRAINT "attribution_payouts_usage_id_address_pk" PRIMARY KEY("usage_id","address")
);
--> statement-breakpoint
CREATE TABLE "attribution_receipts" (
	"usage_id" uuid PRIMARY KEY NOT NULL,
	"published_model_id" integer NOT NULL,
	"status" text NOT NULL,
	"receipt" jsonb,
	"hash" text,
	"block" bigint,
	"error" jsonb,
	"attempts" integer DEFAULT 0 NOT NULL,
	"epoch" integer,
	"collected" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "inference_payloads" (
	"usage_id" uuid PRIMARY KEY NOT NULL,
	"prompt_tokens" jsonb NOT NULL,
	"output" text NOT NULL
);
--> statement-breakpoint
ALTER TABLE "attribution_payouts" ADD CONSTRAINT "attribution_payouts_usage_id_attribution_receipts_usage_id_fk" FOREIGN KEY ("usage_id") REFERENCES "public"."attribution_receipts"("usage_id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "attribution_receipts" ADD CONSTRAINT "attribution_receipts_usage_id_inference_usage_id_fk" FOREIGN KEY ("usage_id") REFERENCES "public"."inference_usage"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "inference_payloads" ADD CONSTRAINT "inference_payloads_usage_id_inference_usage_id_fk" FOREIGN KEY ("usage_id") REFERENCES "public"."inference_usage"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "attribution_payouts_address_idx" ON "attribution_payouts" USING btree ("address");--> statement-breakpoint
CREATE INDEX "attribution_receipts_epoch_idx" ON "attribution_receipts" USING btree ("epoch");--> statement-breakpoint
CREATE INDEX "attribution_receipts_model_idx" ON "attribution_receipts" USING btree ("published_model_id");