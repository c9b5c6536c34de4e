package rpc

// ReplyQueueOf is the name of c's reply queue, for tests.
func ReplyQueueOf(c *Client) string { return c.queue }
