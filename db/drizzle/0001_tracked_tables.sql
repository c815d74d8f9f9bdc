-- Tracked tables: the CDC worker needs old row values on update and delete (changed keys,
-- previous values, soft deletes), so log whole rows.
ALTER TABLE "pages" REPLICA IDENTITY FULL;--> statement-breakpoint
ALTER TABLE "attachments" REPLICA IDENTITY FULL;
