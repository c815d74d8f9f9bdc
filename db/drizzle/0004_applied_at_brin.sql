DROP INDEX "applied_transactions_applied_at_idx";--> statement-breakpoint
CREATE INDEX "applied_transactions_applied_at_idx" ON "applied_transactions" USING brin ("applied_at");