// Package testproc runs helper processes for tests.
package testproc
