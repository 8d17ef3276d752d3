ALTER TABLE "native_batches" ADD COLUMN "poll_owner" text;--> statement-breakpoint
ALTER TABLE "native_batches" ADD COLUMN "poll_lease_expires_at" bigint;