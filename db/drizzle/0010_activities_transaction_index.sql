DROP INDEX "activities_transaction_idx";--> statement-breakpoint
CREATE INDEX "activities_transaction_idx" ON "activities" USING btree ("transaction_id");