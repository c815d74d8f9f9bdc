DROP INDEX "activities_org_entity_type_idx";--> statement-breakpoint
DROP INDEX "activities_client_idx";