CREATE TABLE `services` (
	`id` text PRIMARY KEY NOT NULL,
	`project_id` text NOT NULL,
	`name` text NOT NULL,
	`gateway_id` text NOT NULL,
	`gateway_name` text NOT NULL,
	`created_at` text NOT NULL,
	FOREIGN KEY (`project_id`) REFERENCES `projects`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `services_project_name` ON `services` (`project_id`,`name`);--> statement-breakpoint
CREATE INDEX `services_gateway` ON `services` (`gateway_id`);