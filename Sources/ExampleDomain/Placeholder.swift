// ExampleDomain
