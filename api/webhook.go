package api

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
)

// Webhook delivers feed items to an external notification system: being written.
type Webhook struct{}

// NewWebhook returns a webhook.
func NewWebhook(cfg WebhookConfig, secret string, log *slog.Logger, reg prometheus.Registerer) *Webhook {
	return &Webhook{}
}

// Enqueue queues items for delivery.
func (h *Webhook) Enqueue(items []FeedItem) {}

// Run delivers until ctx is cancelled.
func (h *Webhook) Run(ctx context.Context) { <-ctx.Done() }
