CREATE TABLE "activity_log" (
	"id" text PRIMARY KEY DEFAULT substr(md5(random()::text || clock_timestamp()::text), 1, 12) NOT NULL,
	"pruned_through_lsn" bigint DEFAULT 0 NOT NULL
);
--> statement-breakpoint
INSERT INTO "activity_log" DEFAULT VALUES;
