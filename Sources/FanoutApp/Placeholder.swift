// FanoutApp
