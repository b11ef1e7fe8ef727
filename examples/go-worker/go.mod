module example.com/laissez/go-worker

go 1.19
