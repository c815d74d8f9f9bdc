ALTER TABLE "cdc_state" ADD COLUMN "open_lsn" bigint;--> statement-breakpoint
ALTER TABLE "cdc_state" ADD COLUMN "open_position" integer;--> statement-breakpoint
ALTER TABLE "cdc_state" ADD COLUMN "worker_peak_rss_bytes" bigint;