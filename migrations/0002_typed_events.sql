ALTER TABLE `events` ADD `type` text;--> statement-breakpoint
ALTER TABLE `events` ADD `data` text;--> statement-breakpoint
ALTER TABLE `events` ADD `sequence` integer;