// Subscribers
