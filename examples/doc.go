// Package examples holds the tests that run tend's examples with real
// programs: the Spring Boot stand-in (springboot/), live log levels through
// an actuator endpoint and through logback (loglevel/), and an nginx
// upstream rendered from registered services (nginx/). Each example folder
// has a README with the commands to run it by hand.
//
// The tests copy an example folder to a temporary one, point its agent.hcl
// at a store on a loopback port, render its templates as the agent does
// (one revision, the same template functions) and check what the real
// program then sees: the properties the app loaded, the lines logback
// prints, the backend nginx routed a request to.
package examples
